"""The .rec/.idx/.lst files MXNet's im2rec made: read exactly, and written back byte for byte."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from train.data.labels import LabelSpec
from train.data.lst import parse_lst
from train.data.rec import RecordFileReader
from train.data.recordio import iter_records, read_index, read_record, unpack_image

STEMS = ("digits_train", "digits_val", "digits_multilabel")
COUNTS = {"digits_train": 160, "digits_val": 40, "digits_multilabel": 40}


def _expected(recordio_dir, stem):
    """id → labels, from the .lst that im2rec packed."""
    return {e.index: e.labels for e in parse_lst(recordio_dir / f"{stem}.lst")}


def _labels(record):
    return (record.label,) if record.flag == 0 else record.label


@pytest.mark.parametrize("stem", STEMS)
def test_sequential_scan_matches_the_list(recordio_dir, stem):
    expected = _expected(recordio_dir, stem)
    with open(recordio_dir / f"{stem}.rec", "rb") as fh:
        records = [unpack_image(p, stem, o) for o, p in iter_records(fh, stem)]
    assert len(records) == COUNTS[stem]
    assert {r.id: _labels(r) for r in records} == expected
    assert all(r.image[:2] == b"\xff\xd8" for r in records)  # JPEG
    assert {r.flag for r in records} == ({2} if stem == "digits_multilabel" else {0})


@pytest.mark.parametrize("stem", STEMS)
def test_index_offsets_match_the_list(recordio_dir, stem):
    expected = _expected(recordio_dir, stem)
    index = read_index(recordio_dir / f"{stem}.idx")
    assert len(index) == COUNTS[stem]
    with open(recordio_dir / f"{stem}.rec", "rb") as fh:
        for key, offset in index:
            fh.seek(offset)
            record = unpack_image(read_record(fh, stem, offset)[0], stem, offset)
            assert record.id == key
            assert _labels(record) == expected[key]


@pytest.mark.parametrize("with_idx", [True, False], ids=["idx", "scan"])
def test_reader_with_and_without_idx(recordio_dir, tmp_path, with_idx):
    shutil.copy(recordio_dir / "digits_train.rec", tmp_path)
    if with_idx:
        shutil.copy(recordio_dir / "digits_train.idx", tmp_path)
    reader = RecordFileReader(tmp_path, "train", LabelSpec(num_classes=10))
    expected = _expected(recordio_dir, "digits_train")
    assert len(reader) == 160
    assert reader.class_names == [str(i) for i in range(10)]
    keys = [k for k, _ in read_index(recordio_dir / "digits_train.idx")]
    assert reader.targets() == [int(expected[k][0]) for k in keys]
    sample = reader.read(3)
    assert sample.name == f"digits_train.rec record {keys[3]}"
    assert sample.target == int(expected[keys[3]][0])


def test_multi_label_records(recordio_dir, tmp_path):
    """flag=2 records: (digit, parity) as class ids of one multi-label problem."""
    shutil.copy(recordio_dir / "digits_multilabel.rec", tmp_path)
    reader = RecordFileReader(tmp_path, "train",
                              LabelSpec(multi_label=True, label_format="class-id"))
    expected = _expected(recordio_dir, "digits_multilabel")
    keys = [k for k, _ in read_index(recordio_dir / "digits_multilabel.idx")]
    assert reader.targets() == [tuple(sorted({int(v) for v in expected[k]})) for k in keys]
    assert len(reader.class_names) == 10


def test_sharding_splits_the_records(recordio_dir, tmp_path):
    shutil.copy(recordio_dir / "digits_val.rec", tmp_path)
    spec = LabelSpec(num_classes=10)
    shards = [RecordFileReader(tmp_path, "train", spec, rank=r, num_replicas=3) for r in range(3)]
    names = [[s.read(i).name for i in range(len(s))] for s in shards]
    assert [len(n) for n in names] == [14, 13, 13]
    assert sorted(n for shard in names for n in shard) == sorted(
        RecordFileReader(tmp_path, "train", spec).read(i).name for i in range(40))


@pytest.mark.parametrize(("stem", "extra"), [("digits_train", []),
                                             ("digits_multilabel", ["--pack-label"])])
def test_pack_tool_reproduces_im2rec_byte_for_byte(recordio_dir, digits_images, tmp_path,
                                                    stem, extra):
    """Same list, same image bytes → the same .rec and .idx as MXNet wrote."""
    command = [sys.executable, "-m", "train.tools", "pack", str(digits_images),
               str(tmp_path / stem), "--lst", str(recordio_dir / f"{stem}.lst"), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / f"{stem}.rec").read_bytes() == (recordio_dir / f"{stem}.rec").read_bytes()
    assert (tmp_path / f"{stem}.idx").read_text() == (recordio_dir / f"{stem}.idx").read_text()


def test_index_tool_reproduces_the_idx(recordio_dir, tmp_path):
    shutil.copy(recordio_dir / "digits_val.rec", tmp_path)
    done = subprocess.run([sys.executable, "-m", "train.tools", "index",
                           str(tmp_path / "digits_val.rec")], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "digits_val.idx").read_text() == (
        recordio_dir / "digits_val.idx").read_text()
