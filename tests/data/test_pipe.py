"""Pipe mode: FIFOs read pass by pass, streamed manifests, the shuffle buffer, bounded waits."""

from __future__ import annotations

import random
import threading
import time

import pytest
import torch

from tests.conftest import load_local_test_script
from tests.data.conftest import draw_hand
from train.contract import ChannelConfig
from train.data.base import RawSample
from train.data.dataset import Batch, ImageDataset
from train.data.labels import LabelSpec
from train.data.lst import parse_lst
from train.data.pipe import (
    ManifestStream,
    RecordIOStream,
    StreamedAttributes,
    parse_attribute_names,
    streamed_attributes,
)
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


def _manifest_stream(tmp_path, groups, attributes=None):
    """What SageMaker streams for an augmented manifest; by default read as the built-in's two
    records per line (no names: inputdataconfig.json never carries AttributeNames)."""
    (tmp_path / "train_0").write_bytes(b"".join(frame(r) for g in groups for r in g))
    attributes = attributes or streamed_attributes("train", None, None)
    return ManifestStream(tmp_path, "train", LabelSpec(True, "class-id", 3),
                          attributes=attributes, wait_seconds=1)


PIPE_MANIFEST = ChannelConfig("train", "application/x-recordio", "Pipe", "RecordIO")


def test_without_names_a_sample_is_the_image_then_the_label():
    attributes = streamed_attributes("train", PIPE_MANIFEST, None)
    assert (attributes.width, attributes.label_index, attributes.declared) == (2, 1, False)


def test_attribute_names_hyperparameter_sets_the_records_per_sample():
    assert parse_attribute_names("source-ref, job ,job-metadata") == (
        "source-ref", "job", "job-metadata")
    assert parse_attribute_names('["source-ref", "job"]') == ("source-ref", "job")
    attributes = streamed_attributes("train", PIPE_MANIFEST, "source-ref,job-metadata,job",
                                     label_attribute="job")
    assert (attributes.width, attributes.label, attributes.label_index) == (3, "job", 2)
    # Our own tools' AttributeNames in the file take precedence.
    own = ChannelConfig("train", None, "Pipe", "RecordIO", attribute_names=("ref", "lab"))
    assert streamed_attributes("train", own, "a,b,c").names == ("ref", "lab")


@pytest.mark.parametrize(("names", "label", "message"), [
    ("source-ref", None, "must list the image reference first and the label attribute"),
    ("a,b,a", None, "distinct, non-empty"),
    ("[1, 2]", None, "not a JSON list of strings"),
    ("source-ref,job", "other", "label_attribute='other' is not one of the streamed"),
    (None, "job", "label_attribute='job' needs the hyperparameter attribute_names"),
])
def test_bad_attribute_names_name_the_fix(names, label, message):
    with pytest.raises(UserError, match=message):
        streamed_attributes("train", PIPE_MANIFEST, names, label_attribute=label)


def test_label_record_found_among_more_attributes(tmp_path):
    images = [draw_hand(i % 2, i) for i in range(2)]
    attributes = StreamedAttributes(("source-ref", "meta", "job"), label_index=2)
    stream = _manifest_stream(tmp_path, [(images[0], b'{"x": 1}', b"2"),
                                         (images[1], b"{}", b"[0]")], attributes)
    assert [(s.data, s.target) for s in stream.read_pass(0)] == [(images[0], (2,)),
                                                                 (images[1], (0,))]


def test_a_segmentation_manifest_streamed_to_classification_is_explained(tmp_path):
    png = _marks_png()
    stream = _manifest_stream(tmp_path, [(draw_hand(0, 0), png)])
    with pytest.raises(UserError, match=r"label record 'label' is a PNG image.*semantic-"
                                        r"segmentation manifest.*algorithm and backbone"):
        list(stream.read_pass(0))


def test_rec_files_wrapped_in_recordio_are_explained(tmp_path):
    stream = _manifest_stream(tmp_path, [(frame(b"\0" * 24 + draw_hand(0, 0)), b"1")])
    with pytest.raises(UserError,
                       match=r"the record is itself RecordIO.*RecordWrapperType='None'"):
        list(stream.read_pass(0))


def test_a_manifest_streamed_without_the_recordio_wrapper_is_explained(tmp_path):
    (tmp_path / "train_0").write_bytes(b'{"source-ref": "s3://b/1.jpg", "job": 0}\n')
    stream = RecordIOStream(tmp_path, "train", LabelSpec(num_classes=2), wait_seconds=1)
    with pytest.raises(UserError, match=r"starts with JSON.*record_wrapping='RecordIO'"):
        list(stream.read_pass(0))


def _marks_png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "PNG")
    return out.getvalue()


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
    with pytest.raises(UserError, match=r"record for the image 'image' is JSON.*AttributeNames "
                                        r"must list the image reference first"):
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
