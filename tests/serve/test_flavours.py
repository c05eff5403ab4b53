"""Which serving image an instance type gets (common/flavours.py, for the launchers)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from common.flavours import serving_flavour, serving_image


@pytest.mark.parametrize(
    ("instance_type", "flavour"),
    [("ml.m4.xlarge", "cpu"), ("ml.c5.2xlarge", "cpu"), ("ml.m7i.large", "cpu"),
     ("ml.r6i.large", "cpu"), ("ml.t2.medium", "cpu"), ("ml.inf2.xlarge", "cpu"),
     ("ml.g5.xlarge", "gpu"), ("ml.g4dn.xlarge", "gpu"), ("ml.p3.2xlarge", "gpu"),
     ("ml.p5.48xlarge", "gpu"), ("local", "cpu"), ("local_gpu", "gpu"), (" ML.G6.XLARGE ", "gpu")],
)
def test_flavour_by_instance_type(instance_type, flavour):
    assert serving_flavour(instance_type) == flavour


def test_serving_image_picks_the_uri():
    assert serving_image("ml.m5.large", "repo/serve:1", "repo/serve-cpu:1") == "repo/serve-cpu:1"
    assert serving_image("ml.g5.xlarge", "repo/serve:1", "repo/serve-cpu:1") == "repo/serve:1"


@pytest.mark.parametrize("bad", ["m5.large", "ml.", "ml..x", "xlarge", ""])
def test_a_bad_instance_type_is_refused_with_an_example(bad):
    with pytest.raises(ValueError, match=r"ml\.m5\.xlarge"):
        serving_flavour(bad)


def test_importing_it_does_not_import_torch():
    code = "import sys, common.flavours; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
