"""The artifact's exported graph (common/export.py): written and checked at training time,
never the reason a training job fails, and what the server does without it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from common import artifact
from common.export import ONNX_FILE, export_onnx
from tests.serve.serving_helpers import write_model


def _artifact_without_graph(base: Path) -> Path:
    model_dir = write_model(base) / "model"
    (model_dir / ONNX_FILE).unlink()
    return model_dir


def test_the_graph_computes_what_the_weights_compute(model_base):
    import openvino as ov

    from common.models import build_classifier

    model_dir = model_base / "model"
    meta = artifact.load_metadata(model_dir)
    assert meta.exports["onnx"]["file"] == ONNX_FILE
    assert meta.exports["onnx"]["checked_max_abs_diff"] < 1e-3
    network = build_classifier("resnet", 18, 10)
    network.load_state_dict(artifact.load_state_dict(model_dir))
    x = torch.randn(3, 3, 32, 32)  # another batch size than the export's example
    with torch.no_grad():
        want = network.eval()(x).numpy()
    compiled = ov.Core().compile_model(str(model_dir / ONNX_FILE), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled({"input": x.numpy()})[0], want, atol=1e-4)


@pytest.mark.parametrize("failure", ["unsupported-operator", "exporter-missing"])
def test_an_export_that_cannot_happen_is_recorded_not_raised(tmp_path, monkeypatch, caplog,
                                                             failure):
    model_dir = _artifact_without_graph(tmp_path)
    meta = artifact.load_metadata(model_dir)
    network = torch.nn.Module()
    network.state_dict = lambda: artifact.load_state_dict(model_dir)  # type: ignore[method-assign]

    def broken(*args, **kwargs):
        if failure == "exporter-missing":
            raise ModuleNotFoundError("No module named 'onnx'")
        raise torch.onnx.errors.UnsupportedOperatorError("aten::fft_fft2", 17, None)

    monkeypatch.setattr(torch.onnx, "export", broken)
    with caplog.at_level(logging.WARNING):
        assert export_onnx(network, meta, model_dir) is None
    assert not (model_dir / ONNX_FILE).exists()
    assert not list(model_dir.glob(".*.tmp"))  # no half-written file either
    recorded = json.loads((model_dir / "metadata.json").read_text())["exports"]["onnx"]
    assert "error" in recorded and ("fft" in recorded["error"] or "onnx" in recorded["error"])
    assert "ONNX export skipped" in caplog.text
    # The rest of the artifact is untouched and loads.
    assert artifact.load_metadata(model_dir).num_classes == 10


def test_an_operator_onnx_lacks_skips_the_export_quietly(tmp_path, capfd):
    """PSP pools to fixed grids from inputs of any size: no ONNX export at dynamic sizes."""
    from common.artifact import InputSpec, Metadata
    from common.segmentation import build_segmenter

    network = build_segmenter("psp", "resnet-18", 3)
    meta = Metadata(task=artifact.TASK_SEGMENTATION, architecture="psp", num_layers=18,
                    num_classes=3, class_names=["0", "1", "2"],
                    input=InputSpec(3, 32, 32, 32, (0.5,) * 3, (0.25,) * 3),
                    backbone="resnet-18")
    artifact.save(tmp_path, network.state_dict(), meta)
    assert export_onnx(network, meta, tmp_path) is None
    assert "adaptive_avg_pool2d" in artifact.load_metadata(tmp_path).exports["onnx"]["error"]
    assert "graph(" not in capfd.readouterr().out  # the exporter's C++ graph dump stays out


def test_a_graph_that_computes_something_else_is_not_kept(tmp_path, monkeypatch):
    from common import export

    model_dir = _artifact_without_graph(tmp_path)
    meta = artifact.load_metadata(model_dir)
    from common.models import build_classifier

    network = build_classifier("resnet", 18, 10)
    network.load_state_dict(artifact.load_state_dict(model_dir))
    monkeypatch.setattr(export, "CHECK_TOLERANCE", -1.0)  # nothing can pass
    assert export_onnx(network, meta, model_dir) is None
    assert not (model_dir / ONNX_FILE).exists()
    assert "differ" in artifact.load_metadata(model_dir).exports["onnx"]["error"]


def test_without_a_graph_the_torch_image_serves_the_weights(tmp_path):
    from serve import model
    from serve.batcher import Deadline
    from serve.environment import ServingEnv

    _artifact_without_graph(tmp_path)
    handler = model.load(ServingEnv.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)}))
    assert handler.runtime.name == "torch"
    probabilities = handler.predict([np.zeros((32, 32, 3), np.uint8)], Deadline(None))
    assert probabilities.shape == (1, 10)


def test_without_a_graph_the_cpu_image_says_why(tmp_path, monkeypatch):
    """The CPU image has no torch: the export's recorded error is the reason given."""
    from common.artifact import ArtifactError
    from serve import model, runtimes
    from serve.environment import ServingEnv

    model_dir = _artifact_without_graph(tmp_path)
    meta = json.loads((model_dir / "metadata.json").read_text())
    meta["exports"] = {"onnx": {"error": "UnsupportedOperatorError: aten::fft_fft2"}}
    (model_dir / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(runtimes, "torch_installed", lambda: False)
    env = ServingEnv.from_env({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert model.not_ready_reason(env) is None  # the export is over: nothing to wait for
    with pytest.raises(ArtifactError, match=r"aten::fft_fft2.*torch serving image"):
        model.load(env)
    del meta["exports"]  # an export still running (or an older artifact): wait for it
    (model_dir / "metadata.json").write_text(json.dumps(meta))
    assert "waiting" in model.not_ready_reason(env)
