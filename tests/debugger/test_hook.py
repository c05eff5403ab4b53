"""The hook inside the segmentation job: stopped and resumed, it continues its step counters
as an uninterrupted run would count them; stale claims and in-place ReLUs are handled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.debugger.conftest import write_configs
from tests.segmentation.conftest import seg_job
from tests.segmentation.test_seg_resume import StopAfter
from train.contract import TrainingEnv
from train.debugger.hook import create_hook
from train.errors import TrainingInterrupted
from train.segmentation import run, synthetic

HPS = {"epochs": "2", "mini_batch_size": "4", "crop_size": "32", "base_size": "32"}
HOOK = {"LocalPath": "/opt/ml/output/tensors",
        "HookParameters": {"train.save_interval": "2", "eval.save_interval": "1"},
        "CollectionConfigurations": [
            {"CollectionName": "CrossEntropyLoss_output_0",
             "CollectionParameters": {"include_regex": "CrossEntropyLoss_output_0"}},
            {"CollectionName": "losses"}]}


def _steps(tensors: Path) -> dict[str, list[int]]:
    from smdebug import modes
    from smdebug.trials import create_trial

    tensor = create_trial(str(tensors)).tensor("CrossEntropyLoss_output_0")
    return {mode.name: tensor.steps(mode=mode) for mode in (modes.TRAIN, modes.EVAL)}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.build(tmp_path_factory.mktemp("hook_data"), train=12, validation=4,
                           size=32)


def test_a_resumed_segmentation_job_continues_the_step_counters(tmp_path: Path,
                                                                data: Path) -> None:
    reference = seg_job(tmp_path / "reference", data, **HPS)
    write_configs(reference.base_dir, hook=HOOK)
    run(reference, lambda: False)
    expected = _steps(reference.path("output/tensors"))
    assert expected["TRAIN"] == [0, 2, 4]  # 3 batches an epoch, 2 epochs: steps 0-5
    assert expected["EVAL"] == [0, 1]  # one validation batch a pass

    job = seg_job(tmp_path / "interrupted", data, **HPS)
    write_configs(job.base_dir, hook=HOOK)
    with pytest.raises(TrainingInterrupted):
        run(job, StopAfter(4))  # epoch 0, then one batch of epoch 1
    run(job, lambda: False)
    assert _steps(job.path("output/tensors")) == expected


def test_a_stale_claim_does_not_silence_the_hook(tmp_path: Path) -> None:
    write_configs(tmp_path, hook=HOOK)
    tensors = tmp_path / "output" / "tensors"
    tensors.mkdir(parents=True)
    (tensors / "claim.smd").touch()  # left by a job killed before the hook closed
    model = nn.Sequential(nn.Linear(4, 3))
    criterion = nn.CrossEntropyLoss()
    hook = create_hook(TrainingEnv(base_dir=tmp_path), model, criterion)
    assert hook is not None
    hook.train_mode()
    criterion(model(torch.randn(2, 4)), torch.tensor([0, 1])).backward()
    hook.close()
    assert _steps(tensors)["TRAIN"] == [0]


def test_in_place_relus_are_made_out_of_place_only_for_relu_input(tmp_path: Path) -> None:
    def model() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True))

    plain, with_relu = model(), model()
    write_configs(tmp_path / "a", hook=HOOK)
    create_hook(TrainingEnv(base_dir=tmp_path / "a"), plain, nn.CrossEntropyLoss()).close()
    assert plain[1].inplace
    relu_config = json.loads(json.dumps(HOOK))
    relu_config["CollectionConfigurations"].append(
        {"CollectionName": "relu_input", "CollectionParameters": {"include_regex":
                                                                  ".*relu_input"}})
    write_configs(tmp_path / "b", hook=relu_config)
    create_hook(TrainingEnv(base_dir=tmp_path / "b"), with_relu, nn.CrossEntropyLoss()).close()
    assert not with_relu[1].inplace


def test_a_new_job_moves_an_earlier_jobs_tensors_aside(tmp_path: Path, data: Path) -> None:
    job = seg_job(tmp_path, data, **HPS | {"epochs": "1"})
    write_configs(job.base_dir, hook=HOOK)
    run(job, lambda: False)
    first = _steps(job.path("output/tensors"))
    (job.checkpoint_dir / "last.pt").unlink()  # a new job, not a resumed one
    run(job, lambda: False)
    kept = list(job.path("output").glob("tensors.previous-*"))
    assert len(kept) == 1
    assert _steps(kept[0]) == first == _steps(job.path("output/tensors"))
