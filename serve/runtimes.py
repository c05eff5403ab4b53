"""Where the network runs: OpenVINO on the artifact's ``model.onnx``, or torch on its weights.

A runtime is a callable: float32 NCHW batch (normalized pixels) -> float32 logits, as numpy.
It is called from one thread at a time (``serve.batcher``'s). Which one serves is decided once,
when the model loads (``choose``), from the environment and the hardware:

=============  ================================================================================
``SM_VISION_RUNTIME``  ``auto`` (default): OpenVINO on CPU when the artifact has ``model.onnx``
               and OpenVINO is installed, else torch; torch on GPUs. ``openvino`` / ``torch``
               force one (a forced runtime that cannot run fails the load with the reason).
``SM_VISION_PRECISION``  ``auto`` (default): bf16 where the hardware computes it natively (CPUs
               with AMX or AVX512-BF16, GPUs of compute capability 8.0+), fp16 on older GPUs,
               fp32 elsewhere. ``fp32``, ``bf16``, ``fp16`` (GPU) force one. ``exact``: torch
               fp32 with training's own preprocessing, the reference answers bit for bit.
=============  ================================================================================

This module imports neither torch nor OpenVINO at import time: the CPU image has no torch, and
the gunicorn master imports neither.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.artifact import TASK_SEGMENTATION, ArtifactError, Metadata
from common.export import INPUT_NAME, ONNX_FILE
from serve import contract

log = logging.getLogger(__name__)

ENV_RUNTIME = contract.ENV_RUNTIME
ENV_PRECISION = contract.ENV_PRECISION
_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# Pinned host buffers kept per input shape on GPUs (one per batch size, for classification).
_PINNED_SHAPES = 16

Logits = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Runtime:
    run: Logits
    name: str  # "openvino", "torch"
    precision: str  # "fp32", "bf16", "fp16", "exact"
    device: str  # "cpu", "cuda:0"
    # True when answers must come from training's own preprocessing (``exact``).
    exact_preprocessing: bool = False


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return any(flag in flags.split() for flag in _CPU_BF16_FLAGS)


def choose(meta: Metadata, model_dir: Path, *, runtime: str, precision: str, gpus: int,
           ordinal: int, threads: int) -> Runtime:
    """The runtime this worker serves with (see the module doc)."""
    graph = model_dir / ONNX_FILE
    if runtime == "auto":
        runtime = _auto(graph, precision, gpus)
        if runtime is None:
            raise ArtifactError(_no_graph_reason(meta, model_dir))
    if runtime == "openvino":
        if precision in ("exact", "fp16"):
            raise ArtifactError(f"{ENV_PRECISION}={precision} needs torch "
                                f"({ENV_RUNTIME}=torch, in the torch image)")
        if not graph.is_file():
            raise ArtifactError(_no_graph_reason(meta, model_dir))
        return openvino_runtime(graph, precision, threads)
    if not torch_installed():
        raise ArtifactError(f"{ENV_RUNTIME}=torch, but this image has no torch (the CPU "
                            "serving image runs model.onnx with OpenVINO); unset it")
    return torch_runtime(meta, model_dir, precision, gpus, ordinal, threads)


def _no_graph_reason(meta: Metadata, model_dir: Path) -> str:
    error = meta.exports.get("onnx", {}).get("error")
    why = f"its export failed at training time ({error})" if error else \
        "it was trained by an older version, or the export has not finished"
    return (f"no {ONNX_FILE} in {model_dir}: {why}. This image serves only the exported graph "
            "(no torch); serve this model with the torch serving image, or retrain it")


def _auto(graph: Path, precision: str, gpus: int) -> str | None:
    """GPUs and ``exact`` run torch; CPUs run the exported graph on OpenVINO when they can."""
    has_torch = torch_installed()
    if has_torch and (gpus > 0 or precision in ("exact", "fp16")):
        return "torch"
    if graph.is_file() and importlib.util.find_spec("openvino") is not None:
        return "openvino"
    return "torch" if has_torch else None


def torch_installed() -> bool:
    """Without importing it (seconds)."""
    return importlib.util.find_spec("torch") is not None


# --- OpenVINO ---------------------------------------------------------------------------------
def openvino_runtime(graph: Path, precision: str, threads: int) -> Runtime:
    import openvino as ov

    if precision == "auto":
        precision = "bf16" if cpu_has_native_bf16() else "fp32"
    core = ov.Core()
    compiled = core.compile_model(str(graph), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        # Several workers share the cores: pinned threads would pile onto the same ones.
        "ENABLE_CPU_PINNING": False,
    })
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        request.infer({INPUT_NAME: batch})
        return request.get_output_tensor(0).data.copy()

    return Runtime(run, "openvino", precision, "cpu")


# --- torch ------------------------------------------------------------------------------------
def torch_runtime(meta: Metadata, model_dir: Path, precision: str, gpus: int, ordinal: int,
                  threads: int) -> Runtime:
    """Eager torch on the artifact's weights. GPU path (unmeasured here: no GPU was available):
    channels-last, autocast fp16/bf16, inputs staged through a pinned host buffer."""
    import torch

    from common.artifact import load_state_dict

    device = torch.device("cuda", ordinal % torch.cuda.device_count()) \
        if gpus > 0 and torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cpu":
        torch.set_num_threads(threads)
    network = build_network(meta, load_state_dict(model_dir))
    precision = _torch_precision(precision, device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if dtype is not None or device.type == "cuda":
        network = network.to(memory_format=torch.channels_last)
    network = network.to(device)
    segmentation = meta.task == TASK_SEGMENTATION
    pinned: dict[tuple[int, ...], Any] = {}

    def run(batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch)
        if device.type == "cuda":
            staging = pinned.get(batch.shape)
            if staging is None:
                if len(pinned) >= _PINNED_SHAPES:  # segmentation sizes vary: stay bounded
                    pinned.clear()
                staging = pinned.setdefault(batch.shape,
                                            torch.empty(batch.shape, pin_memory=True))
            staging.copy_(tensor)
            tensor = staging.to(device, non_blocking=True)
        if dtype is not None or device.type == "cuda":
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            out = network(tensor)
            logits = out["out"] if segmentation else out
            return logits.float().cpu().numpy()

    return Runtime(run, "torch", precision, str(device), exact_preprocessing=precision == "exact")


def _torch_precision(precision: str, device: Any) -> str:
    import torch

    if device.type == "cpu":
        if precision == "fp16":
            raise ArtifactError(f"{ENV_PRECISION}=fp16 needs a GPU; use bf16 or fp32 on CPU")
        if precision == "auto":
            return "bf16" if cpu_has_native_bf16() else "fp32"
        return precision
    if precision == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def build_network(meta: Metadata, state_dict: dict[str, Any]) -> Any:
    """The artifact's network with its weights; a mismatch is the artifact's fault."""
    from common.models import build_from_artifact

    try:
        return build_from_artifact(meta, state_dict)
    except (RuntimeError, ValueError) as exc:  # unknown network, missing or mis-shaped tensors
        raise ArtifactError(f"weights do not fit {meta.architecture}: {exc}") from exc
