"""The SageMaker SDK's quiet options, set by every launcher before the SDK is imported.

Without them a launcher run prints, around its own two lines: the SDK's v2 deprecation
notices (twice each: once as a warning, once as a log line), its "Not applying SDK defaults
from location" lines, a "Framework profiling will be deprecated" notice for the seed's
profiler configuration (which the sm-vision image implements itself), a spurious "No finished
training job found" warning from every tuning job, its INFO log lines (``sagemaker.experiments``
calls ``logging.basicConfig(level=INFO)`` when imported during ``fit``), and, offline, a
60-line traceback when the SDK's telemetry request fails. Telemetry itself is opted out in
``launch.session``.
"""

from __future__ import annotations

import logging
import os
import warnings

SUPPRESS_V2_WARNING = "SAGEMAKER_SUPPRESS_V2_WARNING"
# Logged by HyperparameterTuner when it builds its training definition; there is no job yet.
NO_FINISHED_JOB = "No finished training job found associated with this estimator"


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_sdk() -> None:
    """Silence the SDK's notices; its errors still reach the launcher (one line each)."""
    os.environ.setdefault(SUPPRESS_V2_WARNING, "1")
    root = logging.getLogger()
    if not root.handlers:
        # Warnings still print (bare, as Python's last-resort handler prints them); a later
        # logging.basicConfig inside the SDK finds a handler and leaves the root alone.
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    # The SDK gives sagemaker.config an INFO level and a stdout handler unless a level is set.
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    logging.getLogger("sagemaker.deprecations").setLevel(logging.ERROR)
    # A failed telemetry request is logged with logger.exception (the traceback).
    logging.getLogger("sagemaker.telemetry").setLevel(logging.CRITICAL)
    estimator_log = logging.getLogger("sagemaker.estimator")
    if not any(isinstance(f, _DropMessage) for f in estimator_log.filters):
        estimator_log.addFilter(_DropMessage(NO_FINISHED_JOB))
    warnings.filterwarnings("ignore", message="Framework profiling will be deprecated")
    warnings.filterwarnings("ignore", module=r"sagemaker(\.|$)", category=FutureWarning)
