"""The common package of the Customer Service: config, domain rules, storage, use cases."""

__version__ = "0.1.0"
