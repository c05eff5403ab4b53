"""Fixtures for the dataset-format tests: the reference files and images made to match them."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REFERENCE_DATA
from train.data.lst import parse_lst
from train.data.recordio import iter_records, unpack_image

GT_LABEL = "lab1-labeling-job"


@pytest.fixture(scope="session")
def recordio_dir() -> Path:
    return REFERENCE_DATA / "recordio"


@pytest.fixture(scope="session")
def groundtruth_dir() -> Path:
    return REFERENCE_DATA / "groundtruth"


def manifest_objects(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def draw_hand(label: int, seed: int, size: int = 48) -> bytes:
    """A learnable stand-in for the labelled photos: class 0 a vertical bar, 1 a horizontal."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 70, (size, size, 3), dtype=np.uint8)
    at = int(rng.integers(10, size - 10))
    if label == 0:
        pixels[:, at - 4 : at + 4] = 230
    else:
        pixels[at - 4 : at + 4, :] = 230
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="session")
def gt_images(groundtruth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images under the file names of output.manifest (as if s3://lab1-rawdata/ was copied)."""
    out = tmp_path_factory.mktemp("lab1-rawdata")
    for i, obj in enumerate(manifest_objects(groundtruth_dir / "output.manifest")):
        name = obj["source-ref"].rsplit("/", 1)[1]
        (out / name).write_bytes(draw_hand(int(obj[GT_LABEL]), seed=i))
    return out


@pytest.fixture(scope="session")
def digits_images(recordio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The images inside digits_{train,val}.rec, written back under their .lst paths."""
    out = tmp_path_factory.mktemp("digits_images")
    for stem in ("digits_train", "digits_val"):
        paths = {e.index: e.path for e in parse_lst(recordio_dir / f"{stem}.lst")}
        with open(recordio_dir / f"{stem}.rec", "rb") as fh:
            for offset, payload in iter_records(fh, stem):
                record = unpack_image(payload, stem, offset)
                target = out / paths[record.id]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(record.image)
    return out


@pytest.fixture
def run_in_process(monkeypatch: pytest.MonkeyPatch):
    """Run the train command's job in this process (fast for jobs that fail on their data)."""
    from train import cli

    previous = signal.getsignal(signal.SIGTERM)

    def run(base: Path) -> tuple[int, str]:
        monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(base))
        code = cli.run_job()
        failure = base / "output" / "failure"
        return code, failure.read_text() if failure.exists() else ""

    yield run
    signal.signal(signal.SIGTERM, previous)
