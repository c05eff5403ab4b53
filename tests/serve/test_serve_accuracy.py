"""Acceptance: a model trained by this toolkit, served, classifies held-out digits."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest


@pytest.fixture
def digits_model(request):
    """``trained_digits_model`` from tests/conftest.py (the training side provides it)."""
    try:
        return request.getfixturevalue("trained_digits_model")
    except pytest.FixtureLookupError:
        pytest.skip("needs the trained_digits_model fixture from tests/conftest.py")


@pytest.mark.slow  # the fixture trains a model
def test_served_argmax_is_the_right_digit(digits_model, start_server):
    model_dir, heldout = digits_model
    server = start_server(model_dir.parent)
    server.wait_until(ready=True)
    lines = "\n".join(json.dumps({"b64": base64.b64encode(png).decode()}) for png, _ in heldout)
    reply = server.invoke(lines.encode(), "application/jsonlines", "application/jsonlines")
    assert reply.status == 200, reply.body
    predictions = [json.loads(line)["prediction"] for line in reply.body.decode().split("\n")]
    predicted = np.argmax(predictions, axis=1)
    labels = np.array([label for _, label in heldout])
    assert len(predicted) == len(labels)
    accuracy = float((predicted == labels).mean())
    assert accuracy >= 0.9, f"accuracy {accuracy:.3f} on {len(labels)} held-out digits"
