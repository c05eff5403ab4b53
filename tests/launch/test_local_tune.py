"""``launch.tune --local``: SageMaker HPO semantics with trials as local processes.

A tiny stand-in for ``train`` (a Python script reading the trial's ``/opt/ml`` tree) checks
the search bookkeeping in a second; one test runs the real ``train`` command on digits.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import pytest

from launch import tune
from tests.conftest import FAST_HYPERPARAMETERS

OBJECTIVE = re.compile(r"Test set: Average loss: ([0-9\.]+)")

# Loss is lowest at lr = 0.01; an earlier, worse line shows that the last match counts.
# batch-size 512 fails like train does (output/failure, exit 1); 256 logs no objective.
FAKE_TRAIN = """
import json, os, sys, time
from pathlib import Path
base = Path(os.environ["SAGEMAKER_BASE_DIR"])
hp = json.loads((base / "input/config/hyperparameters.json").read_text())
channels = json.loads((base / "input/config/inputdataconfig.json").read_text())
assert (base / "input/data/train/0").is_dir(), "channel not linked"
print("channels", sorted(channels), "modes", sorted({c["TrainingInputMode"] for c in
      channels.values()}))
time.sleep(float(hp.get("sleep", 0)))
if hp.get("batch-size") == "512":
    (base / "output").mkdir(exist_ok=True)
    (base / "output/failure").write_text("ClientError: out of memory\\n")
    sys.exit(1)
if hp.get("batch-size") != "256":
    import math
    print("Test set: Average loss: 99.0, Accuracy: 1/10 (10%)")
    loss = (math.log10(float(hp["lr"])) + 2) ** 2 + int(hp.get("batch-size", 0)) / 1000
    print(f"Test set: Average loss: {loss:.4f}, Accuracy: 9/10 (90%)")
"""


@pytest.fixture
def fake_train(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    return [sys.executable, str(script)]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for split in ("train", "validation"):
        (tmp_path / "data" / split / "0").mkdir(parents=True)
    return tmp_path / "data"


def _local(work_dir: Path, data: Path, command: list[str], *extra: str) -> list[str]:
    return ["--local", "--work-dir", str(work_dir), "--train-command", *command,
            "--channel", f"train={data / 'train'}", "--channel",
            f"validation={data / 'validation'}", "--data-format", "folder", *extra]


def _trials(work_dir: Path) -> list[dict]:
    return json.loads((work_dir / "trials.json").read_text())


def _expected_loss(hps: dict[str, str]) -> float:
    return (math.log10(float(hps["lr"])) + 2) ** 2 + int(hps["batch-size"]) / 1000


def test_minimize_picks_the_lowest_last_reported_objective(tmp_path, data, fake_train, capsys):
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), "--hp", "epochs=1",
                      "--range", "lr=continuous:0.0001:1:log",
                      "--range", "batch-size=categorical:16,32,64",
                      "--strategy", "bayesian", "--max-jobs", "6", "--seed", "3"]) == 0
    trials = _trials(work)
    assert len(trials) == 6
    for trial in trials:
        assert trial["status"] == "Completed"
        assert trial["objective"] == pytest.approx(_expected_loss(trial["hyperparameters"]),
                                                   abs=1e-4)
        lr = float(trial["hyperparameters"]["lr"])
        assert 0.0001 <= lr <= 1
        config = json.loads((work / trial["trial"] / "input/config/hyperparameters.json")
                            .read_text())
        assert config["epochs"] == "1"
        assert config["_tuning_objective_metric"] == "average test loss"
        modes = json.loads((work / trial["trial"] / "input/config/inputdataconfig.json")
                           .read_text())
        assert modes["train"]["ContentType"] == "application/x-image"
    best = min(trials, key=lambda t: t["objective"])
    out = capsys.readouterr().out
    assert f"best: {best['trial']} average test loss = {best['objective']:g}" in out
    assert out.count("Completed") >= 6  # the table
    assert "trial      hyperparameters" in out


def test_maximize_skips_failed_and_silent_trials(tmp_path, data, fake_train, capsys):
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train),
                      "--range", "lr=continuous:0.001:0.1",
                      "--range", "batch-size=categorical:64,256,512",
                      "--objective-metric", "average test loss", "--objective-type", "Maximize",
                      "--strategy", "random", "--max-jobs", "6", "--seed", "0"]) == 0
    trials = _trials(work)
    by_status = {t["status"] for t in trials}
    assert by_status == {"Completed", "Failed", "NoObjective"}
    for trial in trials:
        size = trial["hyperparameters"]["batch-size"]
        expected = {"512": "Failed", "256": "NoObjective"}.get(size, "Completed")
        assert trial["status"] == expected
        if expected == "Failed":
            assert trial["failure"] == "ClientError: out of memory"
            assert trial["objective"] is None
    best = max((t for t in trials if t["status"] == "Completed"), key=lambda t: t["objective"])
    assert f"best: {best['trial']} " in capsys.readouterr().out


def test_a_trial_past_max_run_is_stopped(tmp_path, data, fake_train, capsys):
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), "--hp", "sleep=30", "--max-run", "1",
                      "--range", "lr=continuous:0.001:0.1", "--max-jobs", "1"]) == 1
    assert [t["status"] for t in _trials(work)] == ["Stopped"]
    assert "no trial reported the objective" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--input-mode", "Pipe"], "Pipe mode is not emulated"),
    (["--strategy", "Hyperband"], "not available with --local"),
    (["--max-parallel-jobs", "1000"], "must be between 1 and"),
    (["--train-command", "/nonexistent/train"], "not found"),
    (["--channel", "test=s3://bucket/test/"], "reads local folders"),
    (["--objective-metric", "loss", "--objective-regex", "loss: [0-9.]+"], "capture group"),
])
def test_local_mistakes_are_refused_before_any_trial(tmp_path, data, fake_train, capsys,
                                                     extra, message):
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), *extra]) == 1
    assert message in capsys.readouterr().err
    assert not work.exists()


def _subset(source: Path, target: Path, per_class: int) -> Path:
    for class_dir in sorted(source.iterdir()):
        (target / class_dir.name).mkdir(parents=True)
        for image in sorted(class_dir.iterdir())[:per_class]:
            shutil.copy(image, target / class_dir.name / image.name)
    return target


@pytest.mark.slow
def test_three_digits_trials_with_the_real_train_command(tmp_path, digits_small, capsys):
    # A few images per digit: each trial is mostly start-up, one short epoch and evaluation.
    train = _subset(digits_small / "train", tmp_path / "data" / "train", 4)
    validation = _subset(digits_small / "validation", tmp_path / "data" / "validation", 2)
    work = tmp_path / "hpo"
    static = {**FAST_HYPERPARAMETERS, "epochs": "1"}
    static.pop("learning_rate")
    static.pop("mini_batch_size")
    argv = ["--local", "--work-dir", str(work), "--max-jobs", "3", "--max-parallel-jobs", "1",
            "--seed", "1",
            "--channel", f"train={train}", "--channel", f"validation={validation}",
            "--data-format", "folder",
            "--range", "lr=continuous:0.0001:0.01:log",
            "--range", "batch-size=categorical:16,32"]
    for name, value in static.items():
        argv += ["--hp", f"{name}={value}"]
    assert tune.main(argv) == 0
    trials = _trials(work)
    assert [t["status"] for t in trials] == ["Completed"] * 3
    for trial in trials:
        # The objective is the last "Test set" value in the trial's own log.
        log = (work / trial["trial"] / "train.log").read_text()
        assert trial["objective"] == float(OBJECTIVE.findall(log)[-1])
        assert (work / trial["trial"] / "output" / "success").exists()
    best = min(trials, key=lambda t: t["objective"])
    out = capsys.readouterr().out
    assert f"best: {best['trial']} average test loss = {best['objective']:g}" in out
    assert (work / best["trial"] / "model" / "metadata.json").exists()


# What SageMaker writes per channel in inputdataconfig.json, and nothing else.
SAGEMAKER_CHANNEL_KEYS = {"ContentType", "TrainingInputMode", "S3DistributionType",
                          "RecordWrapperType"}


def _config(work: Path, trial: str, name: str) -> dict:
    return json.loads((work / trial / "input/config" / name).read_text())


def test_trials_get_exactly_the_channel_keys_sagemaker_writes(tmp_path, data, fake_train):
    # A File-mode manifest: SageMaker writes no AttributeNames, so the label attribute
    # travels as the label_attribute hyperparameter.
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), "--data-format", "manifest",
                      "--input-mode", "File", "--attribute-names", "source-ref,class",
                      "--channel-config", "validation:distribution=ShardedByS3Key",
                      "--range", "lr=continuous:0.001:0.1", "--max-jobs", "1"]) == 0
    channels = _config(work, "trial-001", "inputdataconfig.json")
    for channel in channels.values():
        assert set(channel) <= SAGEMAKER_CHANNEL_KEYS
    assert channels["validation"] == {
        "ContentType": "application/x-recordio", "TrainingInputMode": "File",
        "S3DistributionType": "ShardedByS3Key", "RecordWrapperType": "RecordIO"}
    assert _config(work, "trial-001", "hyperparameters.json")["label_attribute"] == "class"


def test_several_instances_per_trial_are_refused_locally(tmp_path, data, fake_train, capsys):
    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), "--instance-count", "2"]) == 1
    err = capsys.readouterr().err
    assert "--instance-count 2" in err and "one host" in err
    assert not work.exists()


@pytest.mark.filterwarnings("ignore:Framework profiling will be deprecated")
def test_local_trials_get_the_debugger_and_profiler_configs_sagemaker_writes(
        tmp_path, data, fake_train, capsys):
    from tests.debugger.conftest import sdk_configs

    work = tmp_path / "hpo"
    assert tune.main([*_local(work, data, fake_train), "--debugger", "--profiler",
                      "--range", "lr=continuous:0.001:0.1", "--max-jobs", "1"]) == 0
    hook, profiler = sdk_configs()
    written_hook = _config(work, "trial-001", "debughookconfig.json")

    def by_name(config: dict) -> list[dict]:  # the SDK keeps them in a set
        return sorted(config.pop("CollectionConfigurations"), key=lambda c: json.dumps(c))

    assert by_name(written_hook) == by_name(hook)
    hook.pop("S3OutputPath")
    assert written_hook == hook
    profiler.pop("S3OutputPath", None)
    assert _config(work, "trial-001", "profilerconfig.json") == profiler
    assert "python -m train.debugger report --base-dir" in capsys.readouterr().out
