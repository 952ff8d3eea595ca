"""Event payloads: decoding order events and encoding change notices (no broker code here)."""
