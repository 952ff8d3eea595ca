"""The Kafka consumer process: order events into history, statistics and points."""
