"""The training input pipeline: decoding, uint8 presets, device-side normalization and the
persistent loader workers (issue 17). Speed is measured in bench/, never asserted here."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from common.artifact import InputSpec
from common.preprocessing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageDecodeError,
    decode_image,
    eval_transform,
)
from tests.conftest import REPO
from train.data import decode
from train.data.base import RawSample, Reader
from train.data.dataset import EpochSampler, ImageDataset
from train.data.decode import decode_rgb
from train.data.loading import Split, make_loader, stop_workers
from train.transforms import train_transform, validation_transform

SPEC = InputSpec(3, 48, 48, 56, IMAGENET_MEAN, IMAGENET_STD)
CPU = torch.device("cpu")
AUGMENTATIONS = [None, "crop", "crop_color", "crop_color_transform"]


def _encode(pixels: np.ndarray, fmt: str = "JPEG", mode: str | None = None) -> bytes:
    image = Image.fromarray(pixels)
    if mode:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt, quality=90)
    return out.getvalue()


def _photo(seed: int, width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    noise = rng.integers(-20, 20, smooth.shape)
    return np.clip(smooth.astype(int) + noise, 0, 255).astype(np.uint8)


IMAGES = {
    "jpeg": _encode(_photo(0, 120, 90)),
    "jpeg-portrait": _encode(_photo(1, 50, 70)),
    "jpeg-small": _encode(_photo(2, 30, 20)),  # upscaled to the shorter side 56
    "jpeg-gray": _encode(_photo(3, 80, 64), mode="L"),
    "jpeg-cmyk": _encode(_photo(4, 80, 64), mode="CMYK"),
    "png": _encode(_photo(5, 64, 80), fmt="PNG"),
    "png-rgba": _encode(_photo(6, 64, 64), fmt="PNG", mode="RGBA"),
}


class _ListReader(Reader):
    def __init__(self, items: list[bytes]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def read(self, index: int) -> RawSample:
        return RawSample(f"image {index}", self.items[index], index % 2)

    def targets(self) -> list[int]:
        return [i % 2 for i in range(len(self.items))]


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_validation_batches_equal_the_servers_preprocessing(name):
    """uint8 through the loader, normalized on the device: the same numbers, bit for bit."""
    dataset = ImageDataset(_ListReader([IMAGES[name]] * 2), validation_transform(SPEC), seed=0)
    loader = make_loader(Split("v", dataset, EpochSampler(2, shuffle=False, seed=0)), 2, 0,
                         False)
    batch = next(iter(loader))
    assert batch.images.dtype == torch.uint8
    served = eval_transform(SPEC)(decode_image(IMAGES[name]))
    assert torch.equal(batch.model_input(CPU, channels_last=False)[0], served)
    channels_last = batch.model_input(CPU, channels_last=True)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last[1], served)


@pytest.mark.parametrize("name", ["jpeg", "jpeg-gray", "jpeg-cmyk", "png", "png-rgba"])
def test_fast_decoding_matches_pillow(name):
    fast = decode_rgb(IMAGES[name])
    reference = np.asarray(decode_image(IMAGES[name]))
    assert fast.shape == reference.shape and fast.dtype == np.uint8
    # The same libjpeg-turbo algorithm (builds may differ by a rounding step).
    assert np.abs(fast.astype(int) - reference.astype(int)).max() <= 1


def test_large_jpegs_are_scaled_down_while_decoding():
    data = _encode(_photo(7, 480, 360))
    assert decode_rgb(data).shape == (360, 480, 3)
    if not decode.fast_jpeg_available():
        pytest.skip("simplejpeg is not installed: Pillow decodes at full size")
    scaled = decode_rgb(data, min_short_side=100)
    assert 100 <= scaled.shape[0] <= 180  # at least halved, never below what was asked
    assert scaled.shape[0] * 4 == scaled.shape[1] * 3
    assert decode_rgb(data, min_short_side=200).shape == (360, 480, 3)  # under a factor of 2


def test_unreadable_and_oversized_images_are_refused_as_before():
    truncated = IMAGES["jpeg"][: len(IMAGES["jpeg"]) // 2]
    for data in (truncated, b"\xff\xd8\xff\xe0 not really a jpeg", b"", b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(ImageDecodeError):
            decode_rgb(data)
    # A JPEG whose header announces 9000 x 9000 pixels: refused before any pixel is decoded.
    data = bytearray(IMAGES["jpeg"])
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (9000).to_bytes(2, "big") * 2
    with pytest.raises(ImageDecodeError, match="above the limit"):
        decode_rgb(bytes(data))


@pytest.mark.parametrize("augmentation", AUGMENTATIONS)
def test_presets_give_repeatable_uint8_images(augmentation):
    dataset = ImageDataset(_ListReader([IMAGES["jpeg"]] * 3), train_transform(SPEC, augmentation),
                           seed=5)
    first = dataset[1][0]
    assert first.dtype == torch.uint8 and first.shape == (3, 48, 48)
    torch.manual_seed(123)
    caller_state = torch.get_rng_state()
    assert torch.equal(dataset[1][0], first)
    assert torch.equal(torch.get_rng_state(), caller_state)  # the caller's RNG is untouched
    if augmentation is not None:
        dataset.set_epoch(1)
        assert not torch.equal(dataset[1][0], first)


def _epochs(dataset: ImageDataset, workers: int, epochs: int) -> list[torch.Tensor]:
    sampler = EpochSampler(len(dataset), shuffle=True, seed=dataset.seed)
    split = Split("train", dataset, sampler)
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        sampler.set_epoch(epoch)
        loader = make_loader(split, 4, workers, False)
        assert loader is make_loader(split, 4, workers, False)  # one loader for the job
        batches = list(loader)
        if workers:
            assert batches[0].images.is_shared()  # built in shared memory by the worker
        out.append(torch.cat([b.images for b in batches]))
    stop_workers(split)
    return out


def test_persistent_workers_follow_the_epoch():
    items = [IMAGES["jpeg"], IMAGES["png"], IMAGES["jpeg-gray"]] * 3
    in_process = _epochs(ImageDataset(_ListReader(items), train_transform(SPEC, "crop"), 0),
                         0, 2)
    workers = _epochs(ImageDataset(_ListReader(items), train_transform(SPEC, "crop"), 0), 2, 2)
    assert torch.equal(in_process[0], workers[0])
    assert torch.equal(in_process[1], workers[1])
    assert not torch.equal(workers[0], workers[1])


def test_a_process_with_persistent_workers_exits():
    """Workers ignore SIGTERM; interpreter exit must still stop them rather than hang."""
    script = (
        "from tests.data.test_input_pipeline import _ListReader, IMAGES, SPEC\n"
        "from train.data.dataset import EpochSampler, ImageDataset\n"
        "from train.data.loading import Split, make_loader\n"
        "from train.transforms import train_transform\n"
        "ds = ImageDataset(_ListReader([IMAGES['jpeg']] * 8), train_transform(SPEC, 'crop'), 0)\n"
        "loader = make_loader(Split('t', ds, EpochSampler(8, shuffle=True, seed=0)), 2, 2, False)\n"
        "next(iter(loader))\n"
        "print('done')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "done"
