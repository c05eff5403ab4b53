"""Load the model once per worker, in the background, and remember whether it worked.

Loading runs in a thread so the worker answers ``/ping`` (503, "loading") from the start and a
slow load never trips gunicorn's worker timeout. A failed load keeps the worker alive but
unready: ``/ping`` stays non-200 and the reason is logged once, instead of gunicorn restarting
the worker in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from common.artifact import ArtifactError
from serve.errors import Unavailable
from serve.model import Classifier

log = logging.getLogger(__name__)


class ModelSlot:
    def __init__(self) -> None:
        self._classifier: Classifier | None = None
        self._problem = "the model is still loading; retry shortly"
        self._settled = threading.Event()  # set once loading succeeded or failed

    def get(self, wait_s: float = 0.0) -> Classifier:
        """The loaded, warmed-up model, or Unavailable (503) saying why not.

        /ping asks without waiting. An invocation waits for a load in progress: /ping may have
        been answered by another, ready, worker, and a few seconds' latency beats a 503.
        """
        self._settled.wait(wait_s)
        classifier = self._classifier
        if classifier is None:
            raise Unavailable(self._problem)
        return classifier

    def load_in_background(self, load: Callable[[], Classifier]) -> threading.Thread:
        thread = threading.Thread(target=self._load, args=(load,), name="model-loader", daemon=True)
        thread.start()
        return thread

    def _load(self, load: Callable[[], Classifier]) -> None:
        try:
            self._try_load(load)
        finally:
            self._settled.set()

    def _try_load(self, load: Callable[[], Classifier]) -> None:
        started = time.monotonic()
        try:
            classifier = load()
        except ArtifactError as exc:
            log.error("model failed to load: %s", exc)
            self._problem = f"model failed to load: {exc}"
            return
        except Exception:
            log.exception("model failed to load")
            self._problem = "model failed to load; the container log has the traceback"
            return
        self._classifier = classifier
        log.info(
            "model ready: %s, %d classes, on %s, in %.1fs",
            classifier.meta.architecture,
            classifier.meta.num_classes,
            classifier.device,
            time.monotonic() - started,
        )
