#!/usr/bin/env python3
"""Training step time with SageMaker Debugger's hook (smdebug) and the Profiler vs. without.

Same model (resnet18), batch size, resolution and pre-made tensors (no data loading), the
training engine's step (forward, loss, backward, optimizer step) and instrumentation
(``Instruments.create``
reading the config files SageMaker writes into a temporary ``/opt/ml``-style tree, then
``train_mode()``, ``after_step()`` after every batch, ``close()``), side by side:

- ``baseline``: no config files, so no hook and no profiler (a job without Debugger);
- ``hook_seed_intervals``: the seed notebook's ``debughookconfig.json`` (the loss every 100
  training steps, ``losses`` and ``relu_input`` every 500); the cost lands on the steps that
  save tensors (smdebug writes them during the step and closes the file at the next forward),
  so saving steps, the steps after them and the others are reported apart;
- ``profiler``: the seed's ``profilerconfig.json`` (system monitor every 500 ms, framework
  profile of 10 steps from ``--window-start``); steps inside and outside the window apart;
- ``hook_every_step``: the worst case of an eager config, weights, gradients and
  ``relu_input`` saved every step (``--eager-steps`` steps: ~100 MB of tensors a step).

Each run builds a fresh model (seed 0), warms it up for ``--warmup`` uninstrumented steps,
then attaches the instruments, so the hook's step 0 (its first save) is timed. A step is timed
from one ``after_batch`` callback to the next (forward, backward, optimizer step, running
stats and the instruments' ``after_step``), synchronising CUDA when the device is a GPU (picked
automatically, as the job does). The four runs repeat ``--rounds`` times in turn, so that a
shared machine's drift spreads over all of them and the baseline's spread between rounds shows
the noise; statistics pool the rounds. Results go to bench/results/debugger.{json,md}.
Timings are recorded, never asserted. About 3-4 minutes with the defaults on 2 CPU cores.

    .venv/bin/python bench/debugger_bench.py [--steps 120] [--eager-steps 20] [--rounds 3]
        [--warmup 10] [--batch 16] [--size 64] [--threads N] [--window-start 0]
"""

from __future__ import annotations

import argparse
import atexit
import itertools
import json
import os
import platform
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch
from debugger_report import STALL_FACTOR, markdown  # bench/, on sys.path when run
from torch import nn

from common.models import build_classifier
from train.contract import (
    DEBUGHOOK_CONFIG_FILE,
    PROFILER_CONFIG_FILE,
    SMDEBUG_CONFIG_ENV,
    TrainingEnv,
)
from train.data.dataset import Batch
from train.debugger import Instruments
from train.debugger.config import StepWindow

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
NUM_CLASSES = 10
DISTINCT_BATCHES = 8  # cycled, the same sequence for every run

_SEED_INTERVALS = {"train.save_interval": "100", "eval.save_interval": "10"}
# What SageMaker writes for the seed notebook's DebuggerHookConfig (launch.debugger), with the
# rules' collections added by the SDK.
SEED_HOOK_CONFIG: dict[str, Any] = {
    "LocalPath": "/opt/ml/output/tensors",
    "HookParameters": dict(_SEED_INTERVALS),
    "CollectionConfigurations": [
        {"CollectionName": "CrossEntropyLoss_output_0",
         "CollectionParameters": {"include_regex": "CrossEntropyLoss_output_0",
                                  **_SEED_INTERVALS}},
        {"CollectionName": "losses", "CollectionParameters": {"save_interval": "500"}},
        {"CollectionName": "relu_input",
         "CollectionParameters": {"include_regex": ".*relu_input", "save_interval": "500"}},
    ],
}
# Too eager: every weight, gradient and ReLU input, every step.
EAGER_HOOK_CONFIG: dict[str, Any] = {
    "LocalPath": "/opt/ml/output/tensors",
    "HookParameters": {"save_interval": "1"},
    "CollectionConfigurations": [
        {"CollectionName": "weights", "CollectionParameters": {"save_interval": "1"}},
        {"CollectionName": "gradients", "CollectionParameters": {"save_interval": "1"}},
        {"CollectionName": "relu_input",
         "CollectionParameters": {"include_regex": ".*relu_input", "save_interval": "1"}},
    ],
}


def seed_profiler_config(window_start: int) -> dict[str, Any]:
    """The seed's ProfilerConfig(500 ms, FrameworkProfile(num_steps=10)) as the SDK writes it
    (sub-configs as strings with a trailing comma); ``StartStep`` is 0 there."""
    window = f'{{"StartStep": {window_start}, "NumSteps": 10, }}'
    return {
        "DisableProfiler": False,
        "ProfilingIntervalInMilliseconds": 500,
        "ProfilingParameters": {
            "LocalPath": "/opt/ml/output/profiler",
            "RotateMaxFileSizeInBytes": "10485760",
            "RotateFileCloseIntervalInSeconds": "60",
            "FileOpenFailThreshold": "50",
            "DetailedProfilingConfig": window,
            "DataloaderProfilingConfig": window[:-2] + '"MetricsRegex": ".*", }',
            "PythonProfilingConfig": window[:-2] + '"ProfilerName": "cprofile", '
                                                   '"cProfileTimer": "total_time", }',
            "HorovodProfilingConfig": window,
            "SMDataParallelProfilingConfig": window,
        },
    }


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _premade(batch: int, size: int, device: torch.device) -> list[Batch]:
    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(DISTINCT_BATCHES):
        images = torch.randn(batch, 3, size, size, generator=generator)
        labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
        made = Batch(list(zip(images, labels.tolist(), strict=True)))
        made.images, made.targets = made.images.to(device), made.targets.to(device)
        batches.append(made)
    return batches


def _first(batches: list[Batch], n: int) -> Iterator[Batch]:
    return itertools.islice(itertools.cycle(batches), n)


class _StepClock:
    """``after_batch``: the instruments' ``after_step`` (as the job calls it), then the time."""

    def __init__(self, instruments: Instruments, device: torch.device) -> None:
        self.instruments = instruments
        self.cuda = device.type == "cuda"
        self.ms: list[float] = []
        self.saved: list[list[str]] = []  # collections the hook saved at each step
        self._last = 0.0

    def start(self) -> None:
        self._sync()
        self._last = time.perf_counter()

    def __call__(self) -> None:
        self.instruments.after_step()
        self._sync()
        self.ms.append(1000.0 * (time.perf_counter() - self._last))
        if self.instruments.hook is not None:
            # smdebug's own record of what this step saved (cached per step, no extra work).
            saved = self.instruments.hook._hook._get_collections_to_save_for_step()
            self.saved.append(sorted(c.name for c in saved))
        self._last = time.perf_counter()  # the bookkeeping above is not part of the step

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


def measure(steps: int, args: argparse.Namespace, batches: list[Batch], device: torch.device,
            hook: dict[str, Any] | None = None,
            profiler: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run: fresh model, warm-up, then ``steps`` timed steps under the instruments."""
    os.sync()  # the previous run's tensors are flushed to disk outside this run's timing
    torch.manual_seed(0)
    model = build_classifier("resnet", 18, NUM_CLASSES).to(device)
    channels_last = device.type == "cuda"  # as the job does
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    criterion = nn.CrossEntropyLoss()

    def epoch(n: int, clock: _StepClock | None) -> None:
        """The engine's training step (forward, loss, backward, step), then the clock."""
        model.train()
        for batch in _first(batches, n):
            images = batch.images
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            loss = criterion(model(images), batch.targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if clock is not None:
                clock()

    epoch(args.warmup, None)
    with tempfile.TemporaryDirectory(prefix="sm-vision-debugger-bench-") as tmp:
        base = Path(tmp)
        for relative, content in ((DEBUGHOOK_CONFIG_FILE, hook),
                                  (PROFILER_CONFIG_FILE, profiler)):
            if content is not None:
                (base / relative).parent.mkdir(parents=True, exist_ok=True)
                (base / relative).write_text(json.dumps(content))
        env = TrainingEnv(base_dir=base)
        start = time.perf_counter()
        instruments = Instruments.create(env, model, criterion, cuda=device.type == "cuda")
        setup_ms = 1000.0 * (time.perf_counter() - start)
        clock = _StepClock(instruments, device)
        instruments.train_mode()
        clock.start()
        epoch(steps, clock)
        start = time.perf_counter()
        instruments.close()
        close_ms = 1000.0 * (time.perf_counter() - start)
        if instruments.hook is not None:
            # smdebug's atexit handler would run close() again at exit and recreate this
            # (deleted) tree to write training_job_end.ts into it.
            atexit.unregister(instruments.hook._hook._cleanup)
        written = _du(base / "output")

    labels = ["step"] * len(clock.ms)
    run: dict[str, Any] = {**_summary(clock.ms), "setup_ms": round(setup_ms, 1),
                           "close_ms": round(close_ms, 1), "bytes_written": written}
    if instruments.hook is not None:
        labels = _hook_labels(clock.saved)
        run["save_steps"] = [{"step": i, "ms": round(clock.ms[i], 2),
                              "collections": names}
                             for i, names in enumerate(clock.saved) if names]
    framework = instruments.profiler.framework if instruments.profiler is not None else None
    if framework is not None:
        labels = _window_labels(framework.window, len(clock.ms))
    run["step_ms"] = [round(t, 2) for t in clock.ms]
    run["labels"] = labels
    return run


def _hook_labels(saved: list[list[str]]) -> list[str]:
    """save: the step saved tensors; after_save: the next, which closes (flushes) its event
    file at the forward pass; other: neither."""
    labels = []
    for i, names in enumerate(saved):
        if names:
            labels.append("save")
        elif i > 0 and saved[i - 1]:
            labels.append("after_save")
        else:
            labels.append("other")
    return labels


def _window_labels(window: StepWindow, steps: int) -> list[str]:
    """window: profiled by torch.profiler; window_last_and_export: the window's last step,
    whose after_step also stops the profiler and writes the trace; profile_start: the step
    before the window, whose after_step starts it (at start(), outside the steps, for 0)."""
    last = window.start_step + window.num_steps - 1
    labels = []
    for i in range(steps):
        if i == last:
            labels.append("window_last_and_export")
        elif window.contains(i):
            labels.append("window")
        elif i == window.start_step - 1:
            labels.append("profile_start")
        else:
            labels.append("outside")
    return labels


def _summary(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "mean_ms": round(statistics.fmean(ms), 2),
            "median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2),
            "max_ms": round(max(ms), 2)}


def _pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """All rounds' steps together, by label, and each round's own figures."""
    ms = [t for run in rounds for t in run["step_ms"]]
    labels = [label for run in rounds for label in run["labels"]]
    result = _summary(ms)
    if len(set(labels)) > 1 or labels[:1] != ["step"]:
        result["groups"] = {label: _summary([t for t, lab in zip(ms, labels, strict=True)
                                             if lab == label])
                            for label in dict.fromkeys(labels)}
    saves = [{"round": n, **save} for n, run in enumerate(rounds)
             for save in run.get("save_steps", [])]
    if saves:
        result["save_steps"] = saves
    stalls = [(n, i) for n, run in enumerate(rounds) for i in _stalls(run)]
    steady = [t for n, run in enumerate(rounds) for i, t in enumerate(run["step_ms"])
              if (n, i) not in stalls]
    result["stalls"] = [{"round": n, "step": i, "ms": rounds[n]["step_ms"][i]}
                        for n, i in stalls]
    result["mean_without_stalls_ms"] = round(statistics.fmean(steady), 2)
    result["rounds"] = rounds
    return result


def _stalls(run: dict[str, Any]) -> list[int]:
    """Steps over STALL_FACTOR x the run's median that nothing in the configuration explains
    (the profiler's trace export is expected): a shared machine's hiccups, which the baseline
    gets too and which swamp a mean of ~100 steps."""
    limit = STALL_FACTOR * statistics.median(run["step_ms"])
    return [i for i, (t, label) in enumerate(zip(run["step_ms"], run["labels"], strict=True))
            if t > limit and label != "window_last_and_export"]


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _cpu_times() -> list[int]:
    """Aggregate jiffies from /proc/stat (Linux), for the steal share of the run."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return []


def _compact(text: str) -> str:
    """Lists of numbers on one line."""
    return re.sub(r"\[\s+([-\d.,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=120,
                        help="timed steps a run (over 100 so the seed's interval hits)")
    parser.add_argument("--eager-steps", type=int, default=20,
                        help="timed steps of hook_every_step (~100 MB of tensors each)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each configuration this many times, in turn (noise, drift)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--window-start", type=int, default=0,
                        help="the profiler window's StartStep (the seed's: 0)")
    args = parser.parse_args()
    if args.steps <= 100:
        print(f"note: --steps {args.steps} <= 100: only step 0 of the seed intervals saves")

    os.environ.pop(SMDEBUG_CONFIG_ENV, None)  # the config in the temporary tree, not another
    torch.set_num_threads(args.threads)
    device = _device()
    batches = _premade(args.batch, args.size, device)
    profiler_config = seed_profiler_config(args.window_start)
    configs: dict[str, tuple[int, dict[str, Any]]] = {
        "baseline": (args.steps, {}),
        "hook_seed_intervals": (args.steps, {"hook": SEED_HOOK_CONFIG}),
        "profiler": (args.steps, {"profiler": profiler_config}),
        # Last in a round: its gigabytes are flushed before the next round's baseline.
        "hook_every_step": (args.eager_steps, {"hook": EAGER_HOOK_CONFIG}),
    }
    load_before, cpu_before = os.getloadavg(), _cpu_times()
    started = time.perf_counter()
    # Process-wide first-use costs (kernel caches, allocator) are not charged to round 0.
    measure(args.warmup, args, batches, device)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    for n in range(args.rounds):
        for name, (steps, files) in configs.items():
            run = measure(steps, args, batches, device, **files)
            rounds[name].append(run)
            print(f"round {n}, {name}: mean {run['mean_ms']} ms, median {run['median_ms']} ms "
                  f"({run['n']} steps)", flush=True)
    cpu_after = _cpu_times()
    order = ["baseline", "hook_seed_intervals", "hook_every_step", "profiler"]
    environment: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU",
        "torch": torch.__version__, "smdebug": version("smdebug"), "numpy": version("numpy"),
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    if len(cpu_before) > 7 and len(cpu_after) > 7:
        delta = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
        environment["cpu_steal_percent"] = round(100.0 * delta[7] / max(sum(delta[:8]), 1), 2)
    result = {
        "environment": environment,
        "config": {"model": "resnet18", "image_size": args.size, "batch": args.batch,
                   "steps": args.steps, "eager_steps": args.eager_steps,
                   "rounds": args.rounds, "warmup": args.warmup, "precision": "float32",
                   "channels_last": device.type == "cuda",
                   "hook_seed_intervals": SEED_HOOK_CONFIG,
                   "hook_every_step": EAGER_HOOK_CONFIG, "profiler": profiler_config},
        "runs": {name: _pooled(rounds[name]) for name in order},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "debugger.json").write_text(_compact(json.dumps(result, indent=2)) + "\n")
    (RESULTS / "debugger.md").write_text(markdown(result))
    print((RESULTS / "debugger.md").read_text())


if __name__ == "__main__":
    main()
