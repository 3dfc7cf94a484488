"""File storage (placeholder while being written)."""
from huey.storage._base import BaseStorage


class FileStorage(BaseStorage):
    pass
