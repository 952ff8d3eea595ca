"""The embedded development servers, one module each, on a shared child-process base."""
