"""A standalone HTML report of a job's Debugger/Profiler evidence and the rule verdicts.

One file, images embedded as base64 PNGs (matplotlib, Agg backend): it opens offline, in a
browser or as a SageMaker artifact, with nothing beside it.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from train.debugger.evidence import Evidence
from train.debugger.rules import ISSUES_FOUND, Verdict

TOP_OPERATORS_SHOWN = 15
STATUS_COLOURS = {ISSUES_FOUND: "#c0392b", "NoIssuesFound": "#1e8449",
                  "NotApplicable": "#7f8c8d", "InsufficientData": "#b9770e"}


def render(evidence: Evidence, verdicts: Sequence[Verdict], title: str) -> str:
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by sm-vision "
        "(<code>python -m train.debugger report</code>).</p>",
        "<h2>Rules</h2>", _verdict_table(verdicts),
        "<h2>Loss</h2>", _loss_section(evidence, verdicts),
        "<h2>System utilisation</h2>", _system_section(evidence),
        "<h2>Framework profile: top operators</h2>", _operator_section(evidence),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )


def _verdict_table(verdicts: Sequence[Verdict]) -> str:
    rows = []
    for verdict in verdicts:
        colour = STATUS_COLOURS.get(verdict.status, "#000")
        if verdict.first is None:
            where = "-"
        elif verdict.unit == "step":
            where = f"step {verdict.first:g}"
        else:
            where = f"{datetime.fromtimestamp(verdict.first, UTC):%H:%M:%S} UTC"
        params = ", ".join(f"{k}={v}" for k, v in verdict.parameters.items())
        rows.append(
            f"<tr><td>{verdict.rule}</td><td style=\"color:{colour};font-weight:bold\">"
            f"{verdict.status}</td><td>{where}</td><td>{html.escape(verdict.message)}</td>"
            f"<td><small>{html.escape(params)}</small></td></tr>")
    return ("<table><tr><th>rule</th><th>status</th><th>first fired</th><th>finding</th>"
            "<th>parameters</th></tr>" + "".join(rows) + "</table>")


def _loss_section(evidence: Evidence, verdicts: Sequence[Verdict]) -> str:
    if not evidence.train_loss and not evidence.eval_loss:
        return "<p>No loss tensors were saved (no Debugger hook config, or no losses).</p>"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    if evidence.train_loss:
        ax.plot([p.step for p in evidence.train_loss], [p.value for p in evidence.train_loss],
                label="train", color="#1f77b4")
    if evidence.eval_loss:
        ax.scatter([p.step for p in evidence.eval_loss], [p.value for p in evidence.eval_loss],
                   s=6, color="#ff7f0e", alpha=0.4, label="validation (per batch)")
        passes = evidence.validation_passes()
        ax.plot([p[0].step for p in passes], [np.mean([q.value for q in p]) for p in passes],
                "o-", color="#d62728", label="validation (pass mean)")
    for verdict in verdicts:
        if verdict.status == ISSUES_FOUND and verdict.unit == "step" and verdict.first:
            ax.axvline(verdict.first, color="#999", linestyle=":", linewidth=1)
            ax.annotate(verdict.rule, (verdict.first, ax.get_ylim()[1]), rotation=90,
                        fontsize=7, va="top", ha="right", color="#555")
    ax.set_xlabel("global step")
    ax.set_ylabel(evidence.loss_name or "loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _image(fig, "train and validation loss per step")


def _system_section(evidence: Evidence) -> str:
    cpu = evidence.system.get("CPUUtilization", {})
    if not cpu:
        return "<p>No system metrics (no profiler config).</p>"
    plt = _pyplot()
    gpu = evidence.system.get("GPUUtilization", {})
    memory = evidence.system.get("Memory", {}).get("MemoryUsedPercent", [])
    start = min(points[0][0] for points in cpu.values())
    fig, ax = plt.subplots(figsize=(9, 4))
    for points in cpu.values():
        ax.plot([t - start for t, _ in points], [v for _, v in points], color="#1f77b4",
                alpha=0.15, linewidth=0.8)
    times = [t - start for t, _ in next(iter(cpu.values()))]
    per_core = [np.array([v for _, v in points]) for points in cpu.values()]
    length = min(len(values) for values in per_core)
    ax.plot(times[:length], np.mean([v[:length] for v in per_core], axis=0), color="#1f77b4",
            label=f"CPU (mean of {len(cpu)} cores)")
    if memory:
        ax.plot([t - start for t, _ in memory], [v for _, v in memory], color="#2ca02c",
                label="memory used")
    for name, points in sorted(gpu.items()):
        ax.plot([t - start for t, _ in points], [v for _, v in points], label=name)
    ax.set_xlabel("seconds since the first sample")
    ax.set_ylabel("%")
    ax.set_ylim(0, 105)
    ax.legend()
    ax.grid(alpha=0.3)
    note = "" if gpu else "<p>No GPU on this job: GPU utilisation is not shown.</p>"
    return _image(fig, "system utilisation over time") + note


def _operator_section(evidence: Evidence) -> str:
    if not evidence.operators:
        return "<p>No framework profile (no DetailedProfilingConfig).</p>"
    plt = _pyplot()
    top = evidence.operators[:TOP_OPERATORS_SHOWN]
    totals = [(o["self_cpu_us"] + o["self_cuda_us"]) / 1000 for o in top]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(top) + 1))
    ax.barh([_short(o["name"]) for o in top][::-1], totals[::-1], color="#8e44ad")
    ax.set_xlabel("self time (ms, CPU + CUDA)")
    fig.tight_layout()
    first, last = evidence.profiled_steps or (0, 0)
    rows = "".join(
        f"<tr><td><code>{html.escape(o['name'])}</code></td><td>{o['calls']}</td>"
        f"<td>{o['self_cpu_us'] / 1000:.1f}</td><td>{o['self_cuda_us'] / 1000:.1f}</td></tr>"
        for o in top)
    return (f"<p>Steps {first}-{last}.</p>" + _image(fig, "top operators by self time")
            + "<table><tr><th>operator</th><th>calls</th><th>self CPU ms</th>"
            "<th>self CUDA ms</th></tr>" + rows + "</table>")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display in a container or on CI
    import matplotlib.pyplot as plt

    return plt


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[:width - 1] + "…"


def _image(fig: Any, alt: str) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
img { max-width: 100%; }
"""
