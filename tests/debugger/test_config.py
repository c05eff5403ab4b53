"""Reading debughookconfig.json and profilerconfig.json as SageMaker writes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.debugger.conftest import sdk_configs, write_configs
from train.contract import TrainingEnv
from train.debugger.config import StepWindow, load_hook_config, load_profiler_settings
from train.errors import UserError


@pytest.fixture(scope="module")
def seed_configs():
    return sdk_configs()


def test_the_sdk_config_of_the_seed_names_the_loss_collection(seed_configs) -> None:
    hook, _ = seed_configs
    assert hook["HookParameters"] == {"train.save_interval": "100", "eval.save_interval": "10"}
    collections = {c["CollectionName"]: c.get("CollectionParameters", {})
                   for c in hook["CollectionConfigurations"]}  # the SDK merges them as a set
    # The seed's own collection, and those the SDK merges in for the rules.
    assert collections["CrossEntropyLoss_output_0"]["include_regex"] == (
        "CrossEntropyLoss_output_0")
    assert collections["relu_input"]["include_regex"] == ".*relu_input"
    assert "losses" in collections


def test_hook_config_maps_the_container_path_into_the_base_dir(tmp_path: Path,
                                                               seed_configs) -> None:
    write_configs(tmp_path, hook=seed_configs[0])
    config = load_hook_config(TrainingEnv(base_dir=tmp_path))
    assert config is not None
    assert config.out_dir == tmp_path / "output" / "tensors"
    assert config.raw["LocalPath"] == str(tmp_path / "output" / "tensors")
    assert config.raw["HookParameters"] == seed_configs[0]["HookParameters"]
    assert "CrossEntropyLoss_output_0" in config.collection_names()


def test_smdebug_config_file_path_takes_precedence(tmp_path: Path, seed_configs,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({**seed_configs[0], "LocalPath": str(tmp_path / "t")}))
    monkeypatch.setenv("SMDEBUG_CONFIG_FILE_PATH", str(elsewhere))
    config = load_hook_config(TrainingEnv(base_dir=tmp_path / "job"))
    assert config is not None and config.source == elsewhere
    assert config.out_dir == tmp_path / "t"  # a path outside /opt/ml is used as given


def test_the_sdk_profiler_config_with_its_trailing_commas(tmp_path: Path, seed_configs) -> None:
    _, profiler = seed_configs
    assert profiler["ProfilingParameters"]["DetailedProfilingConfig"].endswith(", }")
    write_configs(tmp_path, profiler=profiler)
    settings = load_profiler_settings(TrainingEnv(base_dir=tmp_path))
    assert settings is not None
    assert settings.monitor_interval_ms == 500
    assert settings.framework == StepWindow(start_step=0, num_steps=10)
    assert settings.out_dir == tmp_path / "output" / "profiler"


def test_no_config_files_mean_no_hook_and_no_profiler(tmp_path: Path) -> None:
    env = TrainingEnv(base_dir=tmp_path)
    assert load_hook_config(env) is None
    assert load_profiler_settings(env) is None


def test_a_disabled_profiler_is_off(tmp_path: Path) -> None:
    write_configs(tmp_path, profiler={"DisableProfiler": True,
                                      "ProfilingIntervalInMilliseconds": 500})
    assert load_profiler_settings(TrainingEnv(base_dir=tmp_path)) is None


def test_system_metrics_only_without_a_detailed_config(tmp_path: Path) -> None:
    write_configs(tmp_path, profiler={"ProfilingIntervalInMilliseconds": 1000,
                                      "ProfilingParameters": {}})
    settings = load_profiler_settings(TrainingEnv(base_dir=tmp_path))
    assert settings is not None and settings.framework is None
    assert settings.monitor_interval_ms == 1000


@pytest.mark.parametrize(("name", "content", "message"), [
    ("debughookconfig.json", "{not json", "is not valid JSON"),
    ("debughookconfig.json", "[1, 2]", "must hold a JSON object"),
    ("debughookconfig.json", json.dumps({"CollectionConfigurations": [{"Nope": 1}]}),
     "CollectionName"),
    ("debughookconfig.json", json.dumps({"HookParameters": [1]}), "HookParameters"),
    ("profilerconfig.json", json.dumps({"ProfilingIntervalInMilliseconds": 10}),
     "below 100"),
    ("profilerconfig.json", json.dumps({"ProfilingIntervalInMilliseconds": "soon"}),
     "non-negative integer"),
    ("profilerconfig.json", json.dumps({"ProfilingParameters": {
        "DetailedProfilingConfig": "{\"StartStep\": -3, }"}}), "StartStep"),
    ("profilerconfig.json", json.dumps({"ProfilingParameters": {
        "DetailedProfilingConfig": "steps 5 to 10"}}), "DetailedProfilingConfig"),
])
def test_bad_configs_name_the_problem(tmp_path: Path, name: str, content: str,
                                      message: str) -> None:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / name).write_text(content)
    env = TrainingEnv(base_dir=tmp_path)
    with pytest.raises(UserError, match=message):
        load_hook_config(env) if name.startswith("debughook") else load_profiler_settings(env)


def test_without_configs_smdebug_and_the_profiler_are_never_imported(tmp_path: Path) -> None:
    code = f"""
import sys
from pathlib import Path
from torch import nn
from train.contract import TrainingEnv
from train.debugger import Instruments
with Instruments.create(TrainingEnv(base_dir=Path({str(tmp_path)!r})), nn.Linear(2, 2),
                        nn.CrossEntropyLoss(), cuda=False) as instruments:
    instruments.train_mode(); instruments.after_step(); instruments.eval_mode()
    assert instruments.state() is None
loaded = [m for m in sys.modules if m.startswith(("smdebug", "psutil", "matplotlib"))
          or m == "train.debugger.profiler"]
assert not loaded, loaded
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (tmp_path / "output").exists()


def test_the_demo_configs_are_what_the_sdk_writes_for_the_seed(seed_configs) -> None:
    config = REPO / "local_test" / "test_dir" / "input" / "config"
    for name, expected in zip(("debughookconfig.json", "profilerconfig.json"), seed_configs,
                              strict=True):
        actual = json.loads((config / name).read_text())
        actual.pop("S3OutputPath"), expected.pop("S3OutputPath")
        collections = "CollectionConfigurations"
        if collections in expected:
            def by_name(configs):
                return sorted(configs, key=lambda c: c["CollectionName"])
            actual[collections] = by_name(actual[collections])
            expected = expected | {collections: by_name(expected[collections])}
        assert actual == expected, name
