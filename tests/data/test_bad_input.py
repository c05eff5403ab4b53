"""Bad data fails the job as a ClientError naming the file, line or offset, and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import FAST_HYPERPARAMETERS, channel_config, make_opt_ml, run_train
from tests.data.conftest import draw_hand

IMAGE = "application/x-image"
RECORDIO = "application/x-recordio"


def _cfg(content_type, mode="File", wrapper="None"):
    return channel_config(content_type, mode, wrapper=wrapper)


def _job(tmp_path, channels: dict[str, dict[str, bytes | str]], config, **hps) -> Path:
    """A tree whose channels hold the given files (relative path → content)."""
    sources = {}
    for channel, files in channels.items():
        sources[channel] = tmp_path / "src" / channel
        sources[channel].mkdir(parents=True)
        for relative, content in files.items():
            path = sources[channel] / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
    return make_opt_ml(tmp_path / "job", {**FAST_HYPERPARAMETERS, "epochs": "1", **hps},
                       sources, input_config=config)


def _lst_job(tmp_path, lst: str, **hps):
    images = {f"c{i % 2}/{i}.jpg": draw_hand(i % 2, i) for i in range(4)}
    return _job(tmp_path, {"train": images, "train_lst": {"train.lst": lst}},
                {"train": _cfg(IMAGE), "train_lst": _cfg(IMAGE)}, **hps)


def _manifest_job(tmp_path, lines: list[str], **hps):
    images = {f"IMG_{i}.JPG": draw_hand(i % 2, i) for i in range(4)}
    return _job(tmp_path, {"train": {"train.manifest": "\n".join(lines) + "\n"},
                           "images": images},
                {"train": _cfg(IMAGE), "images": _cfg(IMAGE)}, **hps)


def _gt_line(i, label=None, ref=None):
    obj = {"source-ref": ref or f"s3://lab1-rawdata/IMG_{i}.JPG"}
    if label is not None:
        obj["lab1-labeling-job"] = label
    return json.dumps(obj)


def _rec_job(tmp_path, recordio_dir, data: bytes | None = None, idx=False, **hps):
    files: dict[str, bytes | str] = {
        "digits_val.rec": data or (recordio_dir / "digits_val.rec").read_bytes()}
    if idx:
        files["digits_val.idx"] = (recordio_dir / "digits_val.idx").read_text()
    return _job(tmp_path, {"train": files}, {"train": _cfg(RECORDIO)}, **hps)


def _cut(recordio_dir, keep: int) -> bytes:
    return (recordio_dir / "digits_val.rec").read_bytes()[:keep]


def _trailing(recordio_dir) -> bytes:
    """A whole file plus bytes that are no record (an interrupted append)."""
    return (recordio_dir / "digits_val.rec").read_bytes() + b"\x00garbage tail\x00" * 5


def _index_with_a_gap(t, r):
    """A stale .idx: the second record's line is missing."""
    base = _rec_job(t, r, idx=True)
    idx = base / "input/data/train/digits_val.idx"
    lines = idx.read_text().splitlines(keepends=True)
    idx.write_text(lines[0] + "".join(lines[2:]))
    return base


def _corrupt(recordio_dir) -> bytes:
    data = bytearray((recordio_dir / "digits_val.rec").read_bytes())
    data[1076:1080] = b"JUNK"  # the magic word of the second record
    return bytes(data)


CASES = {
    "lst-parent-path": (lambda t, r: _lst_job(t, "1\t0\tc0/0.jpg\n2\t1\t../../etc/x.jpg\n"),
                        ["train.lst, line 2", "'..'", "path traversal is refused"]),
    "lst-absolute-path": (lambda t, r: _lst_job(t, "1\t0\t/etc/hostname\n"),
                          ["train.lst, line 1", "absolute path", "relative"]),
    "lst-label-out-of-range": (
        lambda t, r: _lst_job(t, "1\t0\tc0/0.jpg\n2\t5\tc1/1.jpg\n", num_classes="2"),
        ["train.lst, line 2: label 5 is outside num_classes=2", "raise num_classes"]),
    "lst-missing-image": (lambda t, r: _lst_job(t, "1\t0\tc0/0.jpg\n7\t1\tc1/7.jpg\n"),
                          ["train.lst, line 2: c1/7.jpg", "upload them or remove"]),
    "manifest-parent-path": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0), _gt_line(1, 1, "s3://b/../../etc/x")]),
        ["train.manifest, line 2", "'..'", "path traversal is refused"]),
    "manifest-absolute-path": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0, "/etc/hostname")]),
        ["train.manifest, line 1", "absolute path"]),
    "manifest-missing-label": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0), _gt_line(1), _gt_line(2, 1)]),
        ["train.manifest, line 2 has no label attribute 'lab1-labeling-job'", "label the image"]),
    "manifest-not-json": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0), _gt_line(1, 1), "{'source-ref': 1"]),
        ["train.manifest, line 3 is not JSON", "one JSON object"]),
    "manifest-label-out-of-range": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0), _gt_line(1, 3)], num_classes="2"),
        ["train.manifest, line 2: label 3 is outside num_classes=2"]),
    "manifest-image-not-found": (
        lambda t, r: _manifest_job(t, [_gt_line(0, 0), _gt_line(9, 1)]),
        ["train.manifest, line 2: s3://lab1-rawdata/IMG_9.JPG", "'train_images' or 'images'",
         "source_ref_prefix"]),
    "rec-label-out-of-range": (
        lambda t, r: _rec_job(t, r, num_classes="5"),
        ["digits_val.rec: record id 193 at byte offset 1076: label 9 is outside "
         "num_classes=5"]),
    "rec-truncated": (lambda t, r: _rec_job(t, r, _cut(r, 5000)),
                      ["digits_val.rec: byte offset 4356: truncated record", "re-create"]),
    "rec-truncated-with-idx": (lambda t, r: _rec_job(t, r, _cut(r, 5000), idx=True),
                               ["digits_val.rec: byte offset 4356: truncated record"]),
    "rec-trailing-garbage": (lambda t, r: _rec_job(t, r, _trailing(r)),
                             ["digits_val.rec: byte offset 42388: expected the RecordIO magic"]),
    "rec-trailing-garbage-with-idx": (
        lambda t, r: _rec_job(t, r, _trailing(r), idx=True),
        ["digits_val.rec: byte offset 42388: 70 bytes after the last indexed record",
         "digits_val.idx lists", "re-create the file"]),
    "rec-idx-with-a-gap": (_index_with_a_gap,
                           ["digits_val.rec: byte offset 1076: bytes 1076-", "are not any "
                            "record that digits_val.idx lists", "train.tools index "
                            "digits_val.rec"]),
    "rec-corrupt": (lambda t, r: _rec_job(t, r, _corrupt(r)),
                    ["digits_val.rec: byte offset 1076: expected the RecordIO magic number"]),
    "rec-no-file": (lambda t, r: _job(t, {"train": {"x.jpg": b"x"}}, {"train": _cfg(RECORDIO)}),
                    ["holds no .rec file", "application/x-recordio"]),
    "pipe-fifo-never-appears": (
        lambda t, r: _job(t, {"train": {}}, {"train": _cfg(RECORDIO, "Pipe")},
                          num_classes="10", pipe_wait_seconds="0.5"),
        ["input/data/train_0 did not appear within pipe_wait_seconds=0.5",
         "local_test/pipe_emulator.py"]),
    "pipe-without-num-classes": (
        lambda t, r: _job(t, {"train": {}}, {"train": _cfg(RECORDIO, "Pipe")}),
        ["uses Pipe mode", "set the hyperparameter num_classes"]),
    "pipe-manifest-unwrapped": (
        lambda t, r: _job(t, {"train": {}}, {"train": _cfg(RECORDIO, "Pipe")},
                          num_classes="2", data_format="manifest"),
        ["RecordWrapperType='None'", "set RecordWrapperType='RecordIO'"]),
    "multi-label-folders": (
        lambda t, r: _job(t, {"train": {"a/1.jpg": draw_hand(0, 0), "b/2.jpg": draw_hand(1, 1)}},
                          {"train": _cfg(IMAGE)}, multi_label="1"),
        ["multi_label=1 needs data with several labels per image"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_data_fails_the_job_with_a_clear_reason(case, tmp_path, recordio_dir,
                                                    run_in_process):
    build, fragments = CASES[case]
    base = build(tmp_path, recordio_dir)
    code, failure = run_in_process(base)
    assert code == 1, failure
    assert failure.startswith("ClientError: ")
    for fragment in fragments:
        assert fragment in failure, (fragment, failure)
    assert "Traceback" not in failure
    assert not (base / "model" / "metadata.json").exists()


def test_the_train_command_reports_a_missing_fifo(tmp_path):
    """End to end: exit status 1 and output/failure, as SageMaker reads them."""
    base = _job(tmp_path, {"train": {}}, {"train": _cfg(RECORDIO, "Pipe")}, num_classes="10",
                pipe_wait_seconds="0.5")
    shutil.rmtree(base / "input/data/train")  # SageMaker makes no folder for a Pipe channel
    result = run_train(base)
    assert result.returncode == 1
    assert result.failure.startswith("ClientError: Pipe mode: ")
    assert "did not appear within pipe_wait_seconds=0.5" in result.failure
