"""The HTML report is one standalone file whose every image decodes; LowGPUUtilization on
constructed system metrics (no GPU here to record real ones)."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from train.debugger import report, rules
from train.debugger.evidence import Evidence, LossPoint
from train.debugger.rules import (
    INSUFFICIENT_DATA,
    ISSUES_FOUND,
    NO_ISSUES_FOUND,
    NOT_APPLICABLE,
)


class _References(HTMLParser):
    """Every URL the page would load: src/href attributes and CSS url(...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.alts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in values.items() if k in ("src", "href") and v]
        if tag == "img":
            self.alts.append(values.get("alt") or "")
        if tag in ("script", "link", "iframe"):
            self.urls.append(f"<{tag}>")


def decoded_images(page: str) -> list[Image.Image]:
    """Parse ``page``, check it loads nothing from outside itself, decode every image."""
    parser = _References()
    parser.feed(page)
    parser.close()
    assert not re.search(r"url\(", page)
    external = [u for u in parser.urls if not u.startswith("data:image/png;base64,")]
    assert not external, external
    images = []
    for url in parser.urls:
        data = base64.b64decode(url.split(",", 1)[1], validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()  # decodes the whole PNG, not just its header
        assert image.format == "PNG" and image.width > 100 and image.height > 50
        images.append(image)
    assert all(parser.alts)
    return images


def _gpu_evidence(values: list[float], memory_only: bool = False) -> Evidence:
    points = [(1_800_000_000 + 0.5 * i, v) for i, v in enumerate(values)]
    dimension = "GPUMemoryUtilization" if memory_only else "GPUUtilization"
    return Evidence(system={"CPUUtilization": {"cpu0": points}, dimension: {"gpu0": points}})


def _run_evidence() -> Evidence:
    train = [LossPoint(s, 2.0 - 0.02 * s) for s in range(0, 60, 2)]
    validation = [LossPoint(s, 1.0 + 0.03 * s) for s in (20, 21, 41, 42)]
    operators = [{"name": f"aten::op{i}", "calls": 10 - i, "self_cpu_us": 1000.0 * (10 - i),
                  "self_cuda_us": 0.0} for i in range(8)]
    evidence = _gpu_evidence([90.0] * 50)
    evidence.loss_name = "CrossEntropyLoss_output_0"
    evidence.train_loss, evidence.eval_loss = train, validation
    evidence.operators, evidence.profiled_steps = operators, (0, 9)
    return evidence


def test_the_report_is_standalone_and_every_image_decodes() -> None:
    evidence = _run_evidence()
    verdicts = rules.evaluate_all(evidence)
    page = report.render(evidence, verdicts, "Debugger report: <job & co>")
    assert "<title>Debugger report: &lt;job &amp; co&gt;</title>" in page
    assert len(decoded_images(page)) == 3
    for verdict in verdicts:
        assert verdict.rule in page
    overfit = next(v for v in verdicts if v.rule == "Overfit")
    assert overfit.status == ISSUES_FOUND  # validation rises while training falls
    assert f"<td>step {overfit.first:g}</td>" in page  # where it fired
    assert "aten::op0" in page


def test_a_report_without_profiler_or_tensors_says_what_is_missing() -> None:
    page = report.render(Evidence(), rules.evaluate_all(Evidence()), "empty")
    assert decoded_images(page) == []
    assert "No loss tensors were saved" in page
    assert "No system metrics" in page
    assert "No framework profile" in page


@pytest.mark.parametrize(("values", "status"), [
    ([20.0] * 1100, ISSUES_FOUND),  # underused: p95 below 70
    ([95.0, 2.0] * 550, ISSUES_FOUND),  # fluctuating: p95 high, p5 below 10
    ([92.0] * 1100, NO_ISSUES_FOUND),
    ([20.0] * 900, INSUFFICIENT_DATA),  # not past patience=1000 samples yet
])
def test_low_gpu_utilization(values: list[float], status: str) -> None:
    verdict = rules.low_gpu_utilization(_gpu_evidence(values))
    assert verdict.status == status, verdict.message
    if status == ISSUES_FOUND:
        assert verdict.unit == "time" and verdict.first is not None


def test_low_gpu_utilization_without_a_gpu_is_not_applicable() -> None:
    verdict = rules.low_gpu_utilization(Evidence(system={"CPUUtilization": {"cpu0": [(0, 5)]}}))
    assert verdict.status == NOT_APPLICABLE
    assert "no GPU" in verdict.message


def test_low_gpu_utilization_without_nvml_says_how_to_record_it() -> None:
    verdict = rules.low_gpu_utilization(_gpu_evidence([50.0] * 10, memory_only=True))
    assert verdict.status == INSUFFICIENT_DATA
    assert "nvidia-ml-py" in verdict.message
