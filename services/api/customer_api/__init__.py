"""The gRPC API process: thin servicers over the core use cases."""
