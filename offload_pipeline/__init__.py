"""Exactly-once offload of hot-tier bronze tables into Apache Iceberg."""

__version__ = "0.1.0"

__all__ = ["__version__"]
