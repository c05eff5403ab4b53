"""Raw label values (floats in a RecordIO header or ``.lst`` columns, JSON in a manifest) to
targets, with the built-in algorithm's rules.

Single-label: one class index in ``[0, num_classes)``. Multi-label (``multi_label=1``): a list is
read as ``multi-hot`` (one 0/1 value per class; the built-in default) or as ``class-id`` (the
class indexes that apply; what Ground Truth writes), chosen by the content type's
``label-format`` parameter; a single number is a class index either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from train.data.base import Target
from train.errors import UserError

LABEL_FORMAT_MULTI_HOT = "multi-hot"
LABEL_FORMAT_CLASS_ID = "class-id"
LABEL_FORMATS = (LABEL_FORMAT_MULTI_HOT, LABEL_FORMAT_CLASS_ID)

RawLabel = float | int | Sequence[float | int]


@dataclass(frozen=True)
class LabelSpec:
    multi_label: bool = False
    label_format: str = LABEL_FORMAT_MULTI_HOT
    num_classes: int | None = None  # None: inferred from the training channel

    def target(self, value: RawLabel, where: str) -> Target:
        """One sample's target; ``where`` (file and line or offset) goes into errors."""
        values = _as_list(value)
        if not values:
            raise UserError(f"{where}: the label is empty; every image needs a label")
        if not self.multi_label:
            if len(values) != 1:
                raise UserError(
                    f"{where}: {len(values)} labels for one image, but multi_label=0; set "
                    "multi_label=1 (and num_classes) or keep one label per image"
                )
            return self._class_index(values[0], where)
        if isinstance(value, (int, float)) or self.label_format == LABEL_FORMAT_CLASS_ID:
            return tuple(sorted({self._class_index(v, where) for v in values}))
        return self._multi_hot(values, where)

    def with_num_classes(self, num_classes: int) -> LabelSpec:
        return LabelSpec(self.multi_label, self.label_format, num_classes)

    def _class_index(self, value: float | int, where: str) -> int:
        number = _integral(value, where)
        if number < 0 or (self.num_classes is not None and number >= self.num_classes):
            limit = f"0..{self.num_classes - 1}" if self.num_classes else "0 or more"
            raise UserError(
                f"{where}: label {number} is outside num_classes={self.num_classes} (valid "
                f"labels: {limit}); fix the label or raise num_classes"
            )
        return number

    def _multi_hot(self, values: list[float | int], where: str) -> tuple[int, ...]:
        if self.num_classes is not None and len(values) != self.num_classes:
            raise UserError(
                f"{where}: a multi-hot label has {len(values)} values but num_classes="
                f"{self.num_classes}; give one 0/1 per class, or list class indexes and set "
                "the content type's label-format=class-id"
            )
        ones = []
        for i, v in enumerate(values):
            bit = _integral(v, where)
            if bit not in (0, 1):
                raise UserError(
                    f"{where}: multi-hot labels are 0 or 1, found {v!r}; for a list of class "
                    "indexes set the content type's label-format=class-id"
                )
            if bit:
                ones.append(i)
        return tuple(ones)


def decode_all(entries: Iterable[tuple[str, RawLabel]], spec: LabelSpec
               ) -> tuple[list[Target], int]:
    """Targets of a whole channel and its number of classes (inferred when not given)."""
    entries = list(entries)
    if spec.num_classes is None:
        spec = spec.with_num_classes(_infer_num_classes(entries, spec))
    return [spec.target(value, where) for where, value in entries], spec.num_classes or 0


def parse_label_format(content_type: str | None) -> str:
    """``label-format`` from e.g. ``application/x-recordio; label-format=class-id``."""
    for part in (content_type or "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "label-format":
            value = value.strip().strip('"').lower()
            if value not in LABEL_FORMATS:
                raise UserError(
                    f"ContentType {content_type!r}: label-format={value!r} is not one of "
                    f"{', '.join(LABEL_FORMATS)}"
                )
            return value
    return LABEL_FORMAT_MULTI_HOT


def _infer_num_classes(entries: list[tuple[str, RawLabel]], spec: LabelSpec) -> int:
    multi_hot = spec.multi_label and spec.label_format == LABEL_FORMAT_MULTI_HOT
    lengths = {len(v) for _, v in entries if multi_hot and not isinstance(v, (int, float))}
    if len(lengths) > 1:
        raise UserError(
            f"multi-hot labels of different lengths ({sorted(lengths)}); give one 0/1 per class "
            "in every label and set num_classes"
        )
    if lengths:
        return lengths.pop()
    highest = -1
    for where, value in entries:
        for v in _as_list(value):
            highest = max(highest, _integral(v, where))
    return highest + 1


def _as_list(value: RawLabel) -> list[float | int]:
    if isinstance(value, (int, float)):
        return [value]
    return list(value)


def _integral(value: float | int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or (
        isinstance(value, float) and not value.is_integer()
    ):
        raise UserError(f"{where}: label {value!r} is not a whole number (a class index)")
    return int(value)
