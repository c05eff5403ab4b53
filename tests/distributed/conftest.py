"""The segmentation data fixture, shared with tests/segmentation."""

from tests.segmentation.conftest import seg_data  # noqa: F401 - a fixture
