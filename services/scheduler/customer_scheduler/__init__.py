"""The Taskiq scheduler and worker processes: periodic jobs over the core use cases."""
