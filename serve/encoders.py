"""Response encoders, one per Accept type: probabilities -> body bytes.

Default answers match the built-in image-classification algorithm:

* ``application/json``: one image -> ``[p0, p1, ...]`` (one probability per class, label
  order); a batch -> ``[[...], [...]]``.
* ``application/jsonlines``: one ``{"prediction": [p0, p1, ...]}`` line per image.

Verbose answers replace each per-image list with an object that is a superset of the jsonlines
line: ``{"prediction": [...], "labels": [...], "predicted_label": "cat", "top_k": [{"label":
"cat", "probability": 0.9}, ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from serve import contract
from serve.negotiation import ResponseOptions

Encoder = Callable[[np.ndarray, bool, Sequence[str], ResponseOptions], bytes]


def _verbose(probabilities: np.ndarray, class_names: Sequence[str], top_k: int) -> dict[str, Any]:
    ranked = np.argsort(-probabilities, kind="stable")[:top_k]
    return {
        "prediction": probabilities.tolist(),
        "labels": list(class_names),
        "predicted_label": class_names[int(ranked[0])],
        "top_k": [
            {"label": class_names[int(i)], "probability": float(probabilities[i])} for i in ranked
        ],
    }


def encode_json(
    probabilities: np.ndarray, batch: bool, class_names: Sequence[str], options: ResponseOptions
) -> bytes:
    if options.verbose:
        rows: list[Any] = [_verbose(p, class_names, options.top_k) for p in probabilities]
    else:
        rows = probabilities.tolist()
    return json.dumps(rows if batch else rows[0]).encode()


def encode_jsonlines(
    probabilities: np.ndarray, batch: bool, class_names: Sequence[str], options: ResponseOptions
) -> bytes:
    # No trailing newline: batch transform's AssembleWith=Line adds one after each response.
    lines = (
        _verbose(p, class_names, options.top_k) if options.verbose else {"prediction": p.tolist()}
        for p in probabilities
    )
    return "\n".join(json.dumps(line) for line in lines).encode()


ENCODERS: dict[str, Encoder] = {
    contract.CT_JSON: encode_json,
    contract.CT_JSONLINES: encode_jsonlines,
}
