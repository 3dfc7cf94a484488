"""SQLite storage (placeholder while being written)."""
from huey.storage._base import BaseStorage


class BaseSqlStorage(BaseStorage):
    pass


class SqliteStorage(BaseSqlStorage):
    pass


class CySqliteStorage(SqliteStorage):
    pass
