"""PostgreSQL storage (placeholder while being written)."""
from huey.storage._base import BaseStorage


class PostgresStorage(BaseStorage):
    pass
