"""use_pretrained_model=1 loads torchvision ImageNet weights from local files, never randomly."""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from torchvision import models

from common.models import build_classifier, freeze_backbone
from tests.conftest import FAST_HYPERPARAMETERS, make_opt_ml, run_train

HPS = {**FAST_HYPERPARAMETERS, "epochs": "1", "use_pretrained_model": "1", "finetune": "head"}


def _fake_imagenet_resnet18(path) -> dict[str, torch.Tensor]:
    """A 1000-class resnet18 state_dict saved under torchvision's own file name."""
    torch.manual_seed(123)
    state = models.resnet18(weights=None).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def _assert_backbone_equals(model_dir, imagenet: dict[str, torch.Tensor]) -> None:
    trained = load_file(str(model_dir / "model.safetensors"))
    # Frozen parameters keep the file's values; BatchNorm running statistics still adapt.
    frozen = [k for k in imagenet
              if not k.startswith("fc.") and not k.endswith(("running_mean", "running_var",
                                                             "num_batches_tracked"))]
    assert frozen and all(torch.equal(trained[k], imagenet[k]) for k in frozen)
    assert trained["fc.weight"].shape == (10, 512)


def test_weights_from_the_torch_hub_cache(tmp_path, digits_small):
    torch_home = tmp_path / "torch_home"
    imagenet = _fake_imagenet_resnet18(torch_home / "hub/checkpoints/resnet18-f37072fd.pth")
    base = make_opt_ml(tmp_path / "job", HPS, {"train": digits_small / "train"})
    result = run_train(base, TORCH_HOME=str(torch_home))
    assert result.returncode == 0, result.log[-2000:]
    assert "loading ImageNet weights from " + str(torch_home) in result.log
    _assert_backbone_equals(base / "model", imagenet)


def test_weights_from_a_weights_channel(tmp_path, digits_small):
    imagenet = _fake_imagenet_resnet18(tmp_path / "weights/my-resnet18.pth")
    base = make_opt_ml(tmp_path / "job", HPS, {"train": digits_small / "train",
                                               "weights": tmp_path / "weights"})
    result = run_train(base, TORCH_HOME=str(tmp_path / "empty"))
    assert result.returncode == 0, result.log[-2000:]
    assert "input/data/weights/my-resnet18.pth" in result.log
    _assert_backbone_equals(base / "model", imagenet)


def test_weights_of_another_architecture_are_refused(tmp_path, digits_small):
    torch_home = tmp_path / "torch_home"
    (torch_home / "hub/checkpoints").mkdir(parents=True)
    torch.save(models.resnet34(weights=None).state_dict(),
               torch_home / "hub/checkpoints/resnet18-f37072fd.pth")
    base = make_opt_ml(tmp_path / "job", HPS, {"train": digits_small / "train"})
    result = run_train(base, TORCH_HOME=str(torch_home))
    assert result.returncode == 1
    assert result.failure.startswith("ClientError: pretrained weights do not fit resnet")


def test_vgg16_is_the_dog_breed_model():
    """Features frozen, the classifier's last Linear replaced, ImageNet weights loaded first."""
    torch.manual_seed(0)
    imagenet = models.vgg16(weights=None).state_dict()
    model = build_classifier("vgg16", None, 133, imagenet)
    freeze_backbone(model, "vgg16")

    assert model.classifier[6].out_features == 133
    assert torch.equal(model.features[0].weight, imagenet["features.0.weight"])
    assert torch.equal(model.classifier[0].weight, imagenet["classifier.0.weight"])
    assert not any(p.requires_grad for p in model.features.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
