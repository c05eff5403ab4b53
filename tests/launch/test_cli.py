"""Every launcher explains itself with a complete example, without loading the SDK or torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from launch import (
    api,
    delete,
    deploy,
    invoke,
    label_job,
    label_workflow,
    metric_definitions,
    train,
    transform,
    tune,
)
from tests.conftest import REPO

LAUNCHERS = {"train": train, "tune": tune, "deploy": deploy, "invoke": invoke,
             "transform": transform, "label_workflow": label_workflow, "label_job": label_job,
             "delete": delete, "api": api}


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_help_ends_with_a_complete_example(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        LAUNCHERS[name].main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m launch.{name}")
    example = out.split("example:\n", 1)[1]
    assert f"python -m launch.{name} " in example


def test_help_needs_neither_the_sdk_nor_torch():
    code = (
        "import sys\n"
        f"for name in {sorted(LAUNCHERS)!r}:\n"
        "    module = __import__('launch.' + name, fromlist=['main'])\n"
        "    try:\n"
        "        module.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = {'sagemaker', 'boto3', 'torch'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_metric_definitions_match_what_train_logs():
    from train.metric_definitions import METRIC_DEFINITIONS, MULTI_LABEL_METRIC_DEFINITIONS

    assert metric_definitions.CLASSIFICATION == METRIC_DEFINITIONS
    assert metric_definitions.MULTI_LABEL == MULTI_LABEL_METRIC_DEFINITIONS


def test_segmentation_metric_definitions_match_what_train_logs():
    from train.segmentation.metrics import METRIC_DEFINITIONS

    assert metric_definitions.SEGMENTATION == METRIC_DEFINITIONS


def test_stale_credentials_say_how_to_refresh_them():
    from botocore.exceptions import ClientError

    from launch.cli import error_line

    error = ClientError({"Error": {"Code": "ExpiredTokenException",
                                   "Message": "The security token included in the request is "
                                              "expired"}}, "CreateTrainingJob")
    line = error_line(error)
    assert "expired" in line and "aws sso login" in line and "\n" not in line
