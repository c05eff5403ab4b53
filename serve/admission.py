"""Bound how many invocations a worker holds at once, so /ping always finds a free thread.

gunicorn's gthread worker hands every connection to a fixed pool of threads. If all of them
sat waiting for the model, /ping would queue behind inference and SageMaker would mark the
instance unhealthy. Admitting at most ``threads - 1`` invocations keeps a thread free: extra
invocations are refused at once with 503 (as the built-in model servers do when their queue is
full) and the free thread moves on to the next connection, /ping included.
"""

from __future__ import annotations

import threading
from types import TracebackType

from serve.errors import Unavailable


class Admission:
    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._free = threading.BoundedSemaphore(slots)

    def __enter__(self) -> None:
        if not self._free.acquire(blocking=False):
            raise Unavailable(
                f"this worker already holds {self._slots} requests; retry with backoff, "
                "add instances, or send more images per request instead of more requests"
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._free.release()
