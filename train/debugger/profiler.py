"""SageMaker Profiler's output, recorded inside the container.

When ``profilerconfig.json`` asks for it, two recorders run:

- ``SystemMonitor``: a thread sampling CPU (per core), memory and, with CUDA, GPU utilisation
  and GPU memory every ``ProfilingIntervalInMilliseconds``, written in SageMaker's system-
  metrics layout (so smdebug's ``LocalSystemMetricsReader`` reads it)::

      <out>/system/incremental/<YYYYMMDDHH>/<unix seconds of the minute>.<host>.json
      {"Type": "cpu", "Name": "cpu0", "Dimension": "CPUUtilization", "Value": 41.2,
       "NodeId": "algo-1", "Timestamp": 1763788800.5}

  one JSON object per line, one file per minute, and an empty
  ``<out>/system/training_job_end.ts`` when training ends.
- ``FrameworkProfiler``: ``torch.profiler`` over the training steps of
  ``DetailedProfilingConfig`` (``StartStep``, ``NumSteps``), written as
  ``<out>/framework/pytorch/trace.<host>.json`` (Chrome trace: chrome://tracing, Perfetto)
  and ``<out>/framework/pytorch/operators.<host>.json`` (every operator's call count and
  self/total CPU and CUDA time, the slowest first).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psutil
import torch

from train.debugger.config import FRAMEWORK_DIR, SYSTEM_DIR, ProfilerSettings, StepWindow

log = logging.getLogger(__name__)

END_MARKER = "training_job_end.ts"
TOP_OPERATORS = 50


def system_events(node: str, timestamp: float) -> Iterator[dict[str, Any]]:
    """One sample of every system metric, as SageMaker's system monitor names them."""

    def event(kind: str, name: str, dimension: str, value: float) -> dict[str, Any]:
        return {"Type": kind, "Name": name, "Dimension": dimension, "Value": round(value, 2),
                "NodeId": node, "Timestamp": timestamp}

    for index, percent in enumerate(psutil.cpu_percent(percpu=True)):
        yield event("cpu", f"cpu{index}", "CPUUtilization", percent)
    yield event("cpu", "MemoryUsedPercent", "Memory", psutil.virtual_memory().percent)
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        yield from (event("gpu", f"gpu{index}", dimension, value)
                    for dimension, value in _gpu_sample(index))


def _gpu_sample(index: int) -> list[tuple[str, float]]:
    sample = []
    # torch.cuda.utilization needs NVML (nvidia-ml-py); without it only memory is known.
    with contextlib.suppress(Exception):
        sample.append(("GPUUtilization", float(torch.cuda.utilization(index))))
    free, total = torch.cuda.mem_get_info(index)
    sample.append(("GPUMemoryUtilization", 100.0 * (total - free) / total))
    return sample


class SystemMonitor:
    """Samples system metrics on a daemon thread until ``stop()``."""

    def __init__(self, out_dir: Path, interval_ms: int, node: str,
                 sample: Callable[[str, float], Iterator[dict[str, Any]]] = system_events):
        self.root = out_dir / SYSTEM_DIR
        self.interval = interval_ms / 1000.0
        self.node = node
        self._sample = sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="system-monitor", daemon=True)
        self._file: TextIO | None = None
        self._file_minute = -1

    def start(self) -> None:
        psutil.cpu_percent(percpu=True)  # the first call only sets the baseline
        self._thread.start()
        log.info("profiler: system metrics every %d ms to %s", self.interval * 1000, self.root)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        (self.root.parent / END_MARKER).touch()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._write(time.time())
            self._write(time.time())
        except Exception:  # a broken disk or sensor must not kill the training job
            log.exception("profiler: system monitor stopped")
        finally:
            if self._file is not None:
                self._file.close()

    def _write(self, now: float) -> None:
        out = self._current_file(now)
        for event in self._sample(self.node, now):
            out.write(json.dumps(event) + "\n")
        out.flush()

    def _current_file(self, now: float) -> TextIO:
        minute = int(now // 60 * 60)
        if self._file is None or minute != self._file_minute:
            if self._file is not None:
                self._file.close()
            folder = self.root / datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H")
            folder.mkdir(parents=True, exist_ok=True)
            self._file = (folder / f"{minute}.{self.node}.json").open("a")
            self._file_minute = minute
        return self._file


class FrameworkProfiler:
    """``torch.profiler`` over a window of training steps, counted across epochs."""

    def __init__(self, out_dir: Path, window: StepWindow, node: str, cuda: bool):
        self.folder = out_dir / FRAMEWORK_DIR
        self.window = window
        self.node = node
        self.cuda = cuda
        self.step = 0
        self._profile: torch.profiler.profile | None = None
        self._done = False

    def begin(self) -> None:
        self._sync()

    def after_step(self) -> None:
        self.step += 1
        self._sync()

    def _sync(self) -> None:
        """Start before the window's first step; stop after its last."""
        if self._profile is None and not self._done and self.window.contains(self.step):
            # Kineto writes "USDT: profiler_start/stop" lines, and on CPU-only hosts an "ERROR:
            # gpuGetDeviceCount failed", to stderr on every window; CloudWatch readers take
            # them for failures. Level 6 silences them; a user's own setting wins.
            os.environ.setdefault("KINETO_LOG_LEVEL", "6")
            activities = [torch.profiler.ProfilerActivity.CPU]
            if self.cuda:
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._profile = torch.profiler.profile(activities=activities, record_shapes=True)
            self._profile.__enter__()
            log.info("profiler: framework profile from step %d", self.step)
        elif self._profile is not None and not self.window.contains(self.step):
            self.finish()

    def finish(self) -> None:
        """Write what was recorded (also when training ends inside the window)."""
        if self._profile is None:
            return
        profile, self._profile, self._done = self._profile, None, True
        profile.__exit__(None, None, None)
        self.folder.mkdir(parents=True, exist_ok=True)
        profile.export_chrome_trace(str(self.folder / f"trace.{self.node}.json"))
        operators = operator_table(profile.key_averages())
        (self.folder / f"operators.{self.node}.json").write_text(json.dumps({
            "start_step": self.window.start_step, "end_step": self.step,
            "operators": operators,
        }, indent=1))
        log.info("profiler: framework profile of steps %d-%d written to %s",
                 self.window.start_step, self.step - 1, self.folder)


def operator_table(averages: Any) -> list[dict[str, Any]]:
    rows = []
    for event in averages:
        rows.append({
            "name": event.key,
            "calls": int(event.count),
            "self_cpu_us": float(event.self_cpu_time_total),
            "cpu_total_us": float(event.cpu_time_total),
            "self_cuda_us": float(getattr(event, "self_device_time_total", 0.0)),
            "cuda_total_us": float(getattr(event, "device_time_total", 0.0)),
        })
    rows.sort(key=lambda r: r["self_cpu_us"] + r["self_cuda_us"], reverse=True)
    return rows[:TOP_OPERATORS]


class Profiler:
    """Both recorders of one job."""

    def __init__(self, settings: ProfilerSettings, node: str, cuda: bool):
        self.settings = settings
        self.system = SystemMonitor(settings.out_dir, settings.monitor_interval_ms, node)
        self.framework = (FrameworkProfiler(settings.out_dir, settings.framework, node, cuda)
                          if settings.framework else None)

    def start(self) -> None:
        self.settings.out_dir.mkdir(parents=True, exist_ok=True)
        self.system.start()
        if self.framework is not None:
            self.framework.begin()

    def after_step(self) -> None:
        if self.framework is not None:
            self.framework.after_step()

    def close(self) -> None:
        if self.framework is not None:
            self.framework.finish()
        self.system.stop()
