"""Pipe mode: FIFOs read pass by pass, streamed manifests, the shuffle buffer, bounded waits."""

from __future__ import annotations

import random
import threading
import time

import pytest
import torch

from tests.conftest import load_local_test_script
from tests.data.conftest import draw_hand
from train.data.base import RawSample
from train.data.dataset import Batch, ImageDataset
from train.data.labels import LabelSpec
from train.data.lst import parse_lst
from train.data.pipe import ManifestStream, RecordIOStream
from train.data.recordio import frame
from train.data.stream import StreamSampler, shuffle_buffered
from train.errors import UserError


def _emulator():
    return load_local_test_script("pipe_emulator")


@pytest.fixture
def feeder(tmp_path):
    """Feed ``channel`` from a source, as the emulator does; stopped at the end of the test."""
    emulator = _emulator()
    stop = threading.Event()
    threads = []

    def start(channel, feed, epochs=None):
        thread = emulator.ChannelFeeder(tmp_path, channel, feed, epochs, stop)
        thread.start()
        threads.append(thread)
        return emulator

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)


def test_each_pass_reads_the_next_fifo(tmp_path, feeder, recordio_dir):
    emulator = _emulator()
    feeder("validation", emulator.rec_feed(recordio_dir / "digits_val.rec"))
    stream = RecordIOStream(tmp_path, "validation", LabelSpec(num_classes=10), wait_seconds=10)
    sampler = StreamSampler(stream, shuffle_buffer=0, seed=0)
    expected = [(e.index, int(e.labels[0])) for e in parse_lst(recordio_dir / "digits_val.lst")]
    for _ in range(2):
        items = list(sampler)
        assert [i.position for i in items] == list(range(40))
        got = [(int(i.sample.name.rsplit(" ", 1)[1]), i.sample.target) for i in items]
        assert got == expected
    assert sampler.passes == 2
    assert not (tmp_path / "validation_0").exists()  # consumed FIFOs are removed


def test_decoding_runs_in_worker_processes(tmp_path, feeder, recordio_dir):
    from torch.utils.data import DataLoader

    from common.artifact import InputSpec
    from common.preprocessing import eval_transform

    feeder("train", _emulator().rec_feed(recordio_dir / "digits_train.rec"))
    stream = RecordIOStream(tmp_path, "train", LabelSpec(num_classes=10), wait_seconds=10)
    spec = InputSpec(3, 32, 32, 32, (0.5,) * 3, (0.5,) * 3)
    dataset = ImageDataset(None, eval_transform(spec), seed=0)
    loader = DataLoader(dataset, batch_size=32, num_workers=2, collate_fn=Batch,
                        sampler=StreamSampler(stream, shuffle_buffer=64, seed=0))
    batches = list(loader)
    assert sum(b.size for b in batches) == 160
    assert batches[0].images.shape == (32, 3, 32, 32)
    counts = torch.bincount(torch.cat([b.targets for b in batches]), minlength=10)
    assert counts.tolist() == [19, 15, 12, 17, 15, 13, 18, 19, 17, 15]


def test_shuffle_buffer_is_a_seeded_permutation():
    samples = [RawSample(str(i), b"", i) for i in range(100)]

    def order(seed):
        return [s.target for s in shuffle_buffered(samples, 16, random.Random(seed))]

    assert sorted(order(1)) == list(range(100))
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert order(1) != list(range(100))


def _manifest_stream(tmp_path, groups):
    (tmp_path / "train_0").write_bytes(b"".join(frame(r) for g in groups for r in g))
    return ManifestStream(tmp_path, "train", LabelSpec(True, "class-id", 3),
                          attribute_names=("source-ref", "label"), wait_seconds=1)


def test_streamed_manifest_pairs_image_and_label_records(tmp_path):
    images = [draw_hand(i % 2, i) for i in range(3)]
    stream = _manifest_stream(tmp_path, [(images[0], b"1"), (images[1], b"[0, 2]"),
                                         (images[2], b'"2"')])
    samples = list(stream.read_pass(0))
    assert [s.target for s in samples] == [(1,), (0, 2), (2,)]
    assert [s.data for s in samples] == images


def test_stream_ending_inside_a_sample_fails(tmp_path):
    stream = _manifest_stream(tmp_path, [(b"img", b"1"), (b"img",)])
    with pytest.raises(UserError, match="train_0 ended inside a sample"):
        list(stream.read_pass(0))


def test_swapped_attribute_names_are_explained(tmp_path):
    stream = _manifest_stream(tmp_path, [(b"1", draw_hand(0, 0))])
    with pytest.raises(UserError, match="AttributeNames must list the image reference first"):
        list(stream.read_pass(0))


def test_a_fifo_that_never_appears_fails_after_the_wait(tmp_path):
    stream = RecordIOStream(tmp_path, "train", LabelSpec(num_classes=2), wait_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(UserError, match=r"train_0 did not appear within pipe_wait_seconds=0.3"):
        list(stream.read_pass(0))
    assert time.monotonic() - started < 5


def test_mid_epoch_resume_restarts_the_pass(tmp_path, caplog):
    (tmp_path / "train_0").write_bytes(b"".join(
        frame(b"\0" * 24 + bytes([i])) for i in range(5)))
    stream = RecordIOStream(tmp_path, "train", LabelSpec(num_classes=2), wait_seconds=1)
    sampler = StreamSampler(stream, shuffle_buffer=0, seed=0)
    sampler.set_epoch(3, start=2)
    assert len(list(sampler)) == 5
    assert "restarts from its first sample" in caplog.text
