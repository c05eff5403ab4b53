"""What a user sees: a launcher run prints its own lines only, and a setup mistake is one line
that names the fix.

Each launcher runs as a user runs it (``python -m launch.<name>``) in a clean environment: no
SDK config file (so telemetry is on by default), no ``SAGEMAKER_SUPPRESS_V2_WARNING``. Every
request to an AWS host other than the emulated API goes to a closed loopback port through
``HTTPS_PROXY``, as it would fail offline; the instance metadata service is switched off.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, free_port
from tests.launch.conftest import BUCKET, IMAGE, REGION, ROLE, MotoServer

TRAIN = ["--role", ROLE, "--image-uri", IMAGE, "--bucket", BUCKET,
         "--channel", "train=s3://data/train/", "--job-name", "quiet"]


def _env(tmp_path: Path, aws: MotoServer, **extra: str) -> dict[str, str]:
    env = {
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        "HOME": str(tmp_path),  # no ~/.aws, no ~/.config/sagemaker
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HTTPS_PROXY": f"http://127.0.0.1:{free_port()}",
        "NO_PROXY": "127.0.0.1,localhost",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v}


def _run(module: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"launch.{module}", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_training_job_prints_only_its_own_lines(aws, tmp_path):
    proc = _run("train", [*TRAIN, "--profiler"], _env(tmp_path, aws))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no deprecation warnings, no telemetry traceback
    assert proc.stdout.splitlines() == [
        "training job: quiet", f"model artifact: s3://{BUCKET}/quiet/output/model.tar.gz"]


def test_a_tuning_job_prints_only_its_own_lines(aws, tmp_path):
    proc = _run("tune", [*TRAIN, "--max-jobs", "2"], _env(tmp_path, aws))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines() == ["tuning job: quiet (Minimize 'average test loss', 2 jobs)"]


def test_a_failing_request_is_one_line_without_a_telemetry_traceback(aws, tmp_path):
    # "x" is no valid bucket name: the SDK's CreateBucket fails inside Estimator.fit, the
    # call the SDK's telemetry wraps.
    argv = [*TRAIN[:4], "--bucket", "x", *TRAIN[6:]]
    proc = _run("train", argv, _env(tmp_path, aws))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "InvalidBucketName" in lines[0]


def test_no_region_names_the_fix(aws, tmp_path):
    for module, argv in (("train", TRAIN), ("invoke", ["--endpoint-name", "e", __file__])):
        proc = _run(module, argv, _env(tmp_path, aws, AWS_DEFAULT_REGION=""))
        assert proc.returncode == 1
        lines = proc.stderr.splitlines()
        assert len(lines) == 1, proc.stderr
        assert "--region" in lines[0] and "AWS_REGION" in lines[0]
        assert proc.stdout == ""


def test_no_credentials_name_the_fix(aws, tmp_path):
    env = _env(tmp_path, aws, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    proc = _run("train", [*TRAIN, "--region", REGION], env)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "aws configure" in lines[0] and "--profile" in lines[0]
    assert not aws.calls("CreateTrainingJob")
