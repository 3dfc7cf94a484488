"""Redis storages (placeholder while being written)."""
from huey.storage._base import BaseStorage

SCHEDULE_POP_LUA = ""


class RedisStorage(BaseStorage):
    pass


class RedisExpireStorage(RedisStorage):
    pass


class RedisPriorityQueue:
    pass


class PriorityRedisStorage(RedisPriorityQueue, RedisStorage):
    pass


class PriorityRedisExpireStorage(RedisPriorityQueue, RedisExpireStorage):
    pass
