"""Count CPUs and GPUs without initializing CUDA.

The gunicorn master sizes the worker pool before forking. Calling ``torch.cuda`` there would
create a CUDA context that forked workers cannot use, so GPUs are counted from the driver's
``/proc`` entries, narrowed by ``CUDA_VISIBLE_DEVICES`` when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from serve import contract


def cpu_count() -> int:
    """CPUs this process may run on (respects container cpusets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def gpu_count(environ: Mapping[str, str], proc_gpus: Path = Path(contract.NVIDIA_PROC_GPUS)) -> int:
    try:
        installed = sum(1 for _ in proc_gpus.iterdir())
    except OSError:  # no NVIDIA driver
        installed = 0
    visible = environ.get(contract.ENV_CUDA_VISIBLE_DEVICES)
    if visible is None:
        return installed
    # "", "-1" or "NoDevFiles" hide every GPU; CUDA stops at the first invalid entry.
    count = 0
    for entry in visible.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-") or entry == "NoDevFiles":
            break
        count += 1
    return min(count, installed)
