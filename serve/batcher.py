"""Dynamic batching inside a worker: one inference thread, requests served first come first.

Request threads decode and preprocess their images in parallel, then hand the arrays to the
batcher and wait. The inference thread takes the oldest waiting input and joins to it whatever
else is already waiting (same shape, up to ``max_batch`` images), waiting at most ``max_wait_s``
for more, then runs the network once for all of them. Order is first come, first served, which
keeps the tail latency close to the median under load (a plain lock wakes waiters in any order).

Deadlines are enforced while waiting: a request whose deadline passes gets 503 at once, and its
inputs are dropped if they have not run yet; a request of many images stops at its deadline even
in the middle.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from serve import contract
from serve.errors import Unavailable

log = logging.getLogger(__name__)


@dataclass
class _Job:
    inputs: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    output: np.ndarray | None = None
    error: BaseException | None = None
    cancelled: bool = False


class Deadline:
    """When a request must be answered by (``SAGEMAKER_MODEL_SERVER_TIMEOUT`` from its start)."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.at = None if timeout_s is None else time.monotonic() + timeout_s

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    def check(self) -> None:
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self.expired()

    def expired(self) -> Unavailable:
        return Unavailable(
            f"inference did not finish within {contract.ENV_TIMEOUT}={self.timeout_s:g}s; "
            "send fewer images per request, add instances, or raise the timeout")


class Batcher:
    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int,
                 max_wait_s: float) -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._carried: collections.deque[_Job] = collections.deque()
        self._thread = threading.Thread(target=self._loop, name="inference", daemon=True)
        self._thread.start()

    def infer(self, inputs: np.ndarray, deadline: Deadline) -> np.ndarray:
        """Outputs for ``inputs`` (N first), run ``max_batch`` at a time; 503 at the deadline."""
        jobs = [_Job(np.ascontiguousarray(inputs[i:i + self.max_batch]))
                for i in range(0, len(inputs), self.max_batch)]
        for job in jobs:
            self._queue.put(job)
        outputs = []
        try:
            for job in jobs:
                if not job.done.wait(deadline.remaining()):
                    raise deadline.expired()
                if job.error is not None:
                    raise job.error
                assert job.output is not None
                outputs.append(job.output)
        except BaseException:
            for job in jobs:
                job.cancelled = True
            raise
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _next(self, timeout: float | None) -> _Job | None:
        if self._carried:
            return self._carried.popleft()
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 \
                else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _gather(self) -> list[_Job]:
        first = self._next(None)
        assert first is not None
        jobs, size = [first], len(first.inputs)
        shape = first.inputs.shape[1:]
        until = time.monotonic() + self.max_wait_s
        held: list[_Job] = []
        while size < self.max_batch:
            job = self._next(until - time.monotonic())
            if job is None:
                break
            if job.inputs.shape[1:] != shape or size + len(job.inputs) > self.max_batch:
                held.append(job)  # runs next, in arrival order
                continue
            jobs.append(job)
            size += len(job.inputs)
        self._carried.extendleft(reversed(held))
        return [job for job in jobs if not job.cancelled]

    def _loop(self) -> None:
        while True:
            jobs = self._gather()
            if not jobs:
                continue
            try:
                batch = jobs[0].inputs if len(jobs) == 1 else \
                    np.concatenate([job.inputs for job in jobs])
                out = self._run(batch)
            except BaseException as exc:  # the waiters raise it (a bug: 500)
                log.exception("inference failed")
                for job in jobs:
                    job.error = exc
                    job.done.set()
                continue
            start = 0
            for job in jobs:
                job.output = out[start:start + len(job.inputs)]
                start += len(job.inputs)
                job.done.set()
