"""Load the model once per worker, in the background, and remember whether it worked.

Loading runs in a thread so the worker answers ``/ping`` (503, "loading") from the start and a
slow load never trips gunicorn's worker timeout. When the model directory is still empty (docker
compose starting training and serving together), the thread waits for the model to appear and
``/ping`` says so. A failed load keeps the worker alive but unready: ``/ping`` stays non-200 and
the reason is logged once, instead of gunicorn restarting the worker in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.artifact import ArtifactError
from serve.errors import Unavailable
from serve.handlers import Handler

log = logging.getLogger(__name__)

# How often a worker waiting for the model looks for it again.
POLL_S = 1.0


class ModelSlot:
    def __init__(self) -> None:
        self._handler: Handler | None = None
        self._problem = "the model is still loading; retry shortly"
        self._settled = threading.Event()  # set once loading succeeded or failed

    def get(self, wait_s: float = 0.0) -> Handler:
        """The loaded, warmed-up model's handler, or Unavailable (503) saying why not.

        /ping asks without waiting. An invocation waits for a load in progress: /ping may have
        been answered by another, ready, worker, and a few seconds' latency beats a 503.
        """
        self._settled.wait(wait_s)
        handler = self._handler
        if handler is None:
            raise Unavailable(self._problem)
        return handler

    def load_in_background(self, load: Callable[[], Handler],
                           not_ready: Callable[[], str | None] = lambda: None
                           ) -> threading.Thread:
        thread = threading.Thread(target=self._load, args=(load, not_ready),
                                  name="model-loader", daemon=True)
        thread.start()
        return thread

    def _load(self, load: Callable[[], Handler], not_ready: Callable[[], str | None]) -> None:
        try:
            self._wait_for_model(not_ready)
            self._try_load(load)
        finally:
            self._settled.set()

    def _wait_for_model(self, not_ready: Callable[[], str | None]) -> None:
        logged = None
        while (reason := not_ready()) is not None:
            if reason != logged:
                log.info("%s", reason)
                logged = reason
            self._problem = reason
            time.sleep(POLL_S)
        self._problem = "the model is still loading; retry shortly"

    def _try_load(self, load: Callable[[], Handler]) -> None:
        started = time.monotonic()
        try:
            handler = load()
        except ArtifactError as exc:
            log.error("model failed to load: %s", exc)
            self._problem = f"model failed to load: {exc}"
            return
        except Exception:
            log.exception("model failed to load")
            self._problem = "model failed to load; the container log has the traceback"
            return
        self._handler = handler
        log.info("model ready: %s, in %.1fs", describe(handler), time.monotonic() - started)


def describe(handler: Handler) -> str:
    meta, runtime = getattr(handler, "meta", None), getattr(handler, "runtime", None)
    if meta is None or runtime is None:
        return type(handler).__name__
    return (f"{meta.task} {meta.architecture}, {meta.num_classes} classes, on {runtime.name} "
            f"{runtime.precision} ({runtime.device})")
