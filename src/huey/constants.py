"""Constants shared by every layer: worker type names and the ``EmptyData`` sentinel."""

from __future__ import annotations

WORKER_THREAD = "thread"
WORKER_GREENLET = "greenlet"
WORKER_PROCESS = "process"
WORKER_TYPES = (WORKER_THREAD, WORKER_GREENLET, WORKER_PROCESS)


class EmptyData:
    """Sentinel meaning "no value stored".

    The class itself is the sentinel (compare with ``x is EmptyData``); it is never
    instantiated. Storages return it from ``peek_data`` / ``pop_data`` for a missing key.
    """
