"""Command-line entry points (``huey_consumer``)."""
