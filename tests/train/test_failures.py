"""Every bad input fails the job with output/failure naming the problem, and a non-zero exit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import (
    FAST_HYPERPARAMETERS,
    channel_config,
    make_opt_ml,
    run_train,
    write_input_config,
)


def _tree(tmp_path: Path, digits: Path, hps: dict | None = None, **kwargs) -> Path:
    return make_opt_ml(tmp_path, {**FAST_HYPERPARAMETERS, "epochs": "1", **(hps or {})},
                       {"train": digits / "train", "validation": digits / "validation"},
                       **kwargs)


def _unknown_name(tmp_path, digits):
    return _tree(tmp_path, digits, {"learnin_rate": "0.1"})


def _bad_choice(tmp_path, digits):
    return _tree(tmp_path, digits, {"optimizer": "adagrad"})


def _bad_number(tmp_path, digits):
    return _tree(tmp_path, digits, {"epochs": "ten"})


def _out_of_range(tmp_path, digits):
    return _tree(tmp_path, digits, {"num_layers": "200"})


def _conflicting_aliases(tmp_path, digits):
    return _tree(tmp_path, digits, {"lr": "0.1", "learning_rate": "0.01"})


def _invalid_json(tmp_path, digits):
    base = _tree(tmp_path, digits)
    (base / "input/config/hyperparameters.json").write_text("{'epochs': 1")
    return base


def _no_train_channel(tmp_path, digits):
    base = _tree(tmp_path, digits)
    shutil.rmtree(base / "input/data/train")
    channels = json.loads((base / "input/config/inputdataconfig.json").read_text())
    del channels["train"]
    write_input_config(base, channels)
    return base


def _declared_but_missing(tmp_path, digits):
    base = _tree(tmp_path, digits)
    shutil.rmtree(base / "input/data/train")
    return base


def _empty_channel(tmp_path, digits):
    base = _tree(tmp_path, digits)
    shutil.rmtree(base / "input/data/train")
    (base / "input/data/train").mkdir()
    return base


def _class_without_images(tmp_path, digits):
    base = _tree(tmp_path, digits)
    (base / "input/data/train/10").mkdir()
    return base


def _unknown_validation_class(tmp_path, digits):
    base = _tree(tmp_path, digits)
    shutil.copytree(base / "input/data/validation/1", base / "input/data/validation/eleven")
    return base


def _num_classes_mismatch(tmp_path, digits):
    return _tree(tmp_path, digits, {"num_classes": "5"})


def _pretrained_missing(tmp_path, digits):
    return _tree(tmp_path, digits, {"use_pretrained_model": "1"})


def _unresolvable_master(tmp_path, digits):
    return _tree(tmp_path, digits, resource_config={"current_host": "algo-1",
                                                    "hosts": ["algo-1", "algo-2"]})


def _file_link_out_of_tree(tmp_path, digits):
    base = _tree(tmp_path / "job", digits)
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes((digits / "train/1").iterdir().__next__().read_bytes())
    (base / "input/data/train/1/linked.png").symlink_to(outside)
    return base


def _channel_link_out_of_tree(tmp_path, digits):
    base = _tree(tmp_path / "job", digits)
    shutil.rmtree(base / "input/data/train")
    (base / "input/data/train").symlink_to(digits / "train", target_is_directory=True)
    return base


def _pipe_mode_folder(tmp_path, digits):
    return _tree(tmp_path, digits, input_config={"train": channel_config(mode="Pipe")})


def _unsupported_content_type(tmp_path, digits):
    return _tree(tmp_path, digits, input_config={"train": channel_config("text/csv")})


CASES = {
    _unknown_name: ["unknown hyperparameter 'learnin_rate'", "Did you mean 'learning_rate'?",
                    "Valid names:"],
    _bad_choice: ["optimizer='adagrad'", "choose one of: sgd, adam, rmsprop, nag"],
    _bad_number: ["epochs='ten' is not a valid int"],
    _out_of_range: ["num_layers='200'", "18, 34, 50, 101, 152"],
    _conflicting_aliases: ["'lr'", "'learning_rate'", "keep one of them"],
    _invalid_json: ["hyperparameters.json is not valid JSON"],
    _no_train_channel: ["no training channel", "train or training"],
    _declared_but_missing: ["channel 'train' not found", "one subfolder per class"],
    _empty_channel: ["channel 'train'", "has no class folders"],
    _class_without_images: ["class folder(s) 10", "contain no images"],
    _unknown_validation_class: ["channel 'validation'", "eleven",
                                "training channel does not have"],
    _num_classes_mismatch: ["num_classes=5", "has 10 class folders"],
    _pretrained_missing: ["no ImageNet weights for resnet18", "resnet18-f37072fd.pth",
                          "'weights' channel", "download_pretrained=1"],
    _unresolvable_master: ["the master host 'algo-1'", "does not resolve", "127.0.0.2"],
    _pipe_mode_folder: ["Pipe input mode", "File or FastFile"],
    _file_link_out_of_tree: ["1 symbolic link(s) in the input data point outside",
                             "train/1/linked.png -> ", "elsewhere.png", "cp -al"],
    _channel_link_out_of_tree: ["input/data/train -> ", "reads only its own input tree"],
    _unsupported_content_type: ["ContentType 'text/csv'"],
}


@pytest.mark.parametrize("build", list(CASES), ids=[f.__name__.strip("_") for f in CASES])
def test_bad_input_fails_with_a_clear_reason(build, tmp_path, digits_small):
    base = build(tmp_path, digits_small)
    result = run_train(base, TORCH_HOME=str(tmp_path / "empty_torch_home"),
                       SM_VISION_DNS_WAIT_SECONDS="1")

    assert result.returncode == 1, result.log[-2000:]
    assert not result.succeeded
    first_line = result.failure.splitlines()[0]
    assert first_line.startswith("ClientError: ")
    for fragment in CASES[build]:
        assert fragment in result.failure, (fragment, result.failure)
    assert "Traceback" not in result.failure  # user errors are not stack traces
    assert not (base / "model" / "metadata.json").exists()


def test_internal_error_is_reported_as_algorithm_error(tmp_path, monkeypatch):
    """A bug (not the user's fault) says so, keeps the traceback, and exits 2."""
    from train import cli, engine

    def broken(env, stop, task, dist):
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "run", broken)
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path))
    assert cli.run_job() == cli.EXIT_INTERNAL_ERROR
    failure = (tmp_path / "output/failure").read_text()
    assert failure.startswith("AlgorithmError: RuntimeError: boom")
    assert "Traceback" in failure


def test_links_inside_the_input_tree_are_allowed(tmp_path):
    from train.data.links import outside_links

    data = tmp_path / "input/data"
    (data / "train/a").mkdir(parents=True)
    (data / "validation/a").mkdir(parents=True)
    (data / "validation/a/1.png").write_bytes(b"png")
    (data / "train/a/1.png").symlink_to(data / "validation/a/1.png")
    (data / "shared").symlink_to(data / "validation", target_is_directory=True)
    assert outside_links(data, tmp_path / "input") == []
    (data / "train/a/2.png").symlink_to(tmp_path / "secret.png")
    assert outside_links(data, tmp_path / "input") == [
        (data / "train/a/2.png", tmp_path / "secret.png")]
