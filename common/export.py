"""The artifact's exported graph: ``model.onnx``, written at training time beside the weights.

The CPU serving image has no torch: it runs this graph with OpenVINO. The torch images serve
it too on CPU (same answers in both images) and fall back to the weights when it is missing.

``export_onnx`` never fails a training job. The graph is an optional extra: when it cannot be
written (an operator ONNX lacks — PSP's adaptive pooling at dynamic sizes is one —, the
exporter not installed, a disk error) or when it does not
reproduce the network's outputs, no ``model.onnx`` is left behind, the job logs one warning
with the reason, and ``metadata.json`` records it under ``exports.onnx.error``, so the server
that needs the graph can say why it is missing. A graph that is present always passed the check.

The graph takes float32 ``input`` [N, 3, H, W] (normalized pixels, as
``common.preprocessing`` makes them) and returns float32 ``logits``: [N, classes] for
classification, [N, classes, H, W] for segmentation (the main head only; N, H and W are
dynamic for segmentation, N for classification).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import artifact
from common.artifact import TASK_SEGMENTATION, Metadata

ONNX_FILE = "model.onnx"
OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
# Largest |difference| of logits between the graph (run by OpenVINO in fp32) and torch that
# still counts as the same network. Float kernels differ by ~1e-5 at these magnitudes.
CHECK_TOLERANCE = 1e-3
# Segmentation graphs are checked at this size when the crop is larger (speed).
_SEGMENTATION_CHECK_SIDE = 64

log = logging.getLogger(__name__)


def export_onnx(model: Any, meta: Metadata, model_dir: str | os.PathLike[str]) -> Path | None:
    """Write ``model_dir/model.onnx`` for ``model`` (any module holding the artifact's weights)
    and record the outcome in ``metadata.json``. Returns the file, or None when it could not be
    written. Never raises."""
    out = Path(model_dir) / ONNX_FILE
    try:
        record = _export(model, meta, out)
    except Exception as exc:  # an optional extra must never fail the job
        out.unlink(missing_ok=True)
        reason = f"{type(exc).__name__}: {exc}".strip()[:500]
        log.warning("ONNX export skipped (%s); the artifact is complete without it: the torch "
                    "serving image serves the weights, the CPU serving image needs model.onnx",
                    reason)
        record = {"error": reason}
    try:
        _record(meta, Path(model_dir), record)
    except Exception as exc:
        log.warning("could not record the ONNX export in %s: %s", artifact.METADATA_FILE, exc)
    return out if "file" in record else None


def _export(model: Any, meta: Metadata, out: Path) -> dict[str, Any]:
    import torch

    network = _clean_copy(model, meta)
    side = meta.input.height, meta.input.width
    if meta.task == TASK_SEGMENTATION:
        side = tuple(min(s, _SEGMENTATION_CHECK_SIDE) for s in side)  # type: ignore[assignment]
        axes = {INPUT_NAME: {0: "n", 2: "h", 3: "w"}, OUTPUT_NAME: {0: "n", 2: "h", 3: "w"}}
    else:
        axes = {INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}}
    example = torch.randn(2, 3, *side, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    # The TorchScript-based exporter (dynamo=False): the torch.export-based one needs
    # onnxscript and a protobuf newer than smdebug's 3.20. It warns that it is the legacy one.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), \
            _quiet_stdout():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(network, (example,), buffer, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)
        expected = network(example).numpy()
    graph = buffer.getvalue()
    difference = _check(graph, example.numpy(), expected)
    with artifact.atomic_open(out) as fh:
        fh.write(graph)
    log.info("exported %s (opset %d, %.1f MB)%s", out, OPSET, len(graph) / 1e6,
             "" if difference is None else f"; max |logit difference| {difference:.2e}")
    record: dict[str, Any] = {"file": ONNX_FILE, "opset": OPSET, "input": INPUT_NAME,
                              "output": OUTPUT_NAME}
    if difference is not None:
        record["checked_max_abs_diff"] = float(difference)
    return record


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """On failure the exporter's C++ side prints the whole TorchScript graph to file descriptor 1
    (hundreds of lines in the job's log, which CloudWatch reads); the exception says what
    matters. Nothing else of the job writes while the export runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _clean_copy(model: Any, meta: Metadata) -> Any:
    """The network rebuilt from the artifact's builders, on CPU in fp32 and eval mode, with the
    model's weights: no DataParallel, hooks (Debugger), channels-last or autocast state."""
    import torch
    from torch import nn

    from common.models import build_from_artifact

    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype)
             for k, v in model.state_dict().items()}
    network = build_from_artifact(meta, state)
    if meta.task != TASK_SEGMENTATION:
        return network

    class MainHead(nn.Module):
        """A segmentation network's ``out`` logits alone (the served answer)."""

        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.network(x)["out"]

    return MainHead().eval()


def _check(graph: bytes, example: Any, expected: Any) -> float | None:
    """Max |logits difference| between the graph, run by OpenVINO in fp32, and torch; raises
    when the graph computes something else. None when OpenVINO is not installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    compiled = core.compile_model(core.read_model(graph), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled({INPUT_NAME: example})[0]
    difference = float(abs(got - expected).max())
    if not difference <= CHECK_TOLERANCE:
        raise ValueError(f"the exported graph's logits differ from torch's by {difference:.3g} "
                         f"(tolerance {CHECK_TOLERANCE})")
    return difference


def _record(meta: Metadata, model_dir: Path, record: dict[str, Any]) -> None:
    exports = {**meta.exports, "onnx": record}
    updated = dataclasses.replace(meta, exports=exports)
    with artifact.atomic_open(model_dir / artifact.METADATA_FILE) as fh:
        fh.write(updated.to_json().encode())
