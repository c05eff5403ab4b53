#!/usr/bin/env python3
"""The Markdown report of ``bench/debugger_bench.py``: what its JSON results mean.

Rendering is kept apart from measuring so that the text can be regenerated (after an edit to
it) without repeating the 3-4 minute measurement:

    .venv/bin/python bench/debugger_report.py   # bench/results/debugger.json -> .md
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
# Steps over this many times their run's median count as stalls (see debugger_bench._stalls).
STALL_FACTOR = 3.0


def _pct(value: float, reference: float) -> str:
    return f"{100.0 * (value - reference) / reference:+.1f}%"


def markdown(result: dict[str, Any]) -> str:
    cfg, env, runs = result["config"], result["environment"], result["runs"]
    base = runs["baseline"]
    seed, eager, prof = runs["hook_seed_intervals"], runs["hook_every_step"], runs["profiler"]
    mb = 1024 * 1024
    steady_base = base["mean_without_stalls_ms"]

    def overhead(run: dict[str, Any]) -> str:
        return (f"{_pct(run['mean_ms'], base['mean_ms'])} "
                f"(median {_pct(run['median_ms'], base['median_ms'])})")

    def group(run: dict[str, Any], key: str, stat: str = "median_ms") -> str:
        g = run.get("groups", {}).get(key, {"n": 0})
        return f"{g['n']} steps, {stat[:-3]} {g[stat]} ms" if g["n"] else "none"

    def stalls(run: dict[str, Any]) -> str:
        if not run["stalls"]:
            return "no stalls"
        worst = max(s["ms"] for s in run["stalls"])
        return (f"{len(run['stalls'])} stalls (> {STALL_FACTOR:g}x the run's median, up to "
                f"{worst:.0f} ms); without them mean {run['mean_without_stalls_ms']} ms "
                f"({_pct(run['mean_without_stalls_ms'], steady_base)})")

    def per_round(run: dict[str, Any]) -> str:
        return " / ".join(str(r["median_ms"]) for r in run["rounds"])

    def at(run: dict[str, Any], step: int) -> str:
        times = [r["step_ms"][step] for r in run["rounds"] if len(r["step_ms"]) > step]
        return " / ".join(f"{t:.0f}" for t in times) + " ms"

    eager_mb = statistics.fmean(r["bytes_written"] / r["n"] for r in eager["rounds"]) / mb
    seed_mb = statistics.fmean(r["bytes_written"] for r in seed["rounds"]) / mb
    notes = {
        "baseline": "no config files: no hook, no profiler",
        "hook_seed_intervals": (f"saving steps: {group(seed, 'save', 'mean_ms')}; the step "
                                f"after: {group(seed, 'after_save', 'mean_ms')}; others: "
                                f"{group(seed, 'other')}; {seed_mb:.1f} MB a run"),
        "hook_every_step": f"every step saves, {eager_mb:.0f} MB of tensors a step",
        "profiler": (f"in the window: {group(prof, 'window')}; its last step + trace export: "
                     f"{group(prof, 'window_last_and_export', 'mean_ms')}; outside: "
                     f"{group(prof, 'outside')}"),
    }
    rows = "".join(f"| `{name}` | {run['mean_ms']} | {run['median_ms']} | "
                   f"{'—' if name == 'baseline' else overhead(run)} | {notes[name]}; "
                   f"round medians {per_round(run)}; {stalls(run)} |\n"
                   for name, run in runs.items())
    medians = [r["median_ms"] for r in base["rounds"]]
    spread = (max(medians) - min(medians)) / statistics.fmean(medians)
    # A group can be empty with a small --steps; it then reads "nan".
    empty = {"n": 0, "mean_ms": math.nan, "median_ms": math.nan}
    other = seed["groups"].get("other", empty)
    outside = prof.get("groups", {}).get("outside", empty)
    window = prof.get("groups", {}).get("window", empty)
    export = prof.get("groups", {}).get("window_last_and_export", empty)
    steal = env.get("cpu_steal_percent")
    n_stalls = sum(len(run["stalls"]) for run in runs.values())
    eager_first = statistics.median(t for r in eager["rounds"] for t in r["step_ms"][:5])
    eager_last = statistics.median(t for r in eager["rounds"] for t in r["step_ms"][-5:])

    def versus(value: float) -> str:
        """Against the baseline's median, flagged when the rounds' spread covers it."""
        noise = abs(value - base["median_ms"]) / base["median_ms"] <= max(spread, 0.03)
        return _pct(value, base["median_ms"]) + (", within the noise" if noise else "")

    hooks_cost = abs(other["median_ms"] - base["median_ms"]) / base["median_ms"] > max(
        spread, 0.03)
    return (
        f"# Debugger hook and profiler overhead ({env['device']})\n\n"
        f"resnet18, {cfg['image_size']}x{cfg['image_size']}, batch {cfg['batch']}, "
        f"pre-made tensors, float32; {cfg['rounds']} rounds of the configurations in turn, "
        f"{cfg['steps']} timed steps a run ({cfg['eager_steps']} for `hook_every_step`) after "
        f"{cfg['warmup']} warm-up steps; torch {env['torch']}, smdebug {env['smdebug']}, "
        f"numpy {env['numpy']}, {env['torch_threads']} threads on {env['cpu_count']} CPUs, "
        f"{env['total_seconds']:.0f} s in all. Each run: a fresh model, the engine's "
        "training step and `Instruments` from config files in a temporary `/opt/ml` "
        "tree. Statistics pool the rounds' steps; `bench/results/debugger.json` has every "
        "step.\n\n"
        "| configuration | mean ms/step | median ms/step | overhead vs baseline | notes |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n"
        f"**Noise.** The baseline's median moved by {100 * spread:.1f}% between rounds"
        + (f" (CPU steal {steal:.1f}% over the run)" if steal is not None else "")
        + (f", and {n_stalls} steps across all configurations, the baseline included, stalled "
           "for no reason of their own (a shared virtual machine): they swamp a mean of ~100 "
           "steps, so the comparisons below use medians and the means without stalls"
           if n_stalls else "")
        + ". Differences of a few per cent are within the noise.\n\n"
        f"**Seed intervals.** Steps that save nothing take {other['median_ms']} ms (median) "
        f"against the baseline's {base['median_ms']} ms ({versus(other['median_ms'])}): "
        + ("that is the cost of smdebug's Python forward hooks on every module and gradient "
           "hooks on every parameter when there is nothing to save. " if hooks_cost else
           "smdebug's Python forward hooks on every module and gradient hooks on every "
           "parameter cost nothing measurable here when there is nothing to save. ")
        + "The cost is on the save steps. "
        "Step 0 — the first, which sets up the writer and also saves the `losses` and "
        f"`relu_input` collections (every 500 steps, "
        f"{seed_mb:.1f} MB) — took {at(seed, 0)} (one figure per round) and step 1, which "
        f"closes and flushes that event file, {at(seed, 1)}; "
        + (f"step 100, which saves the loss alone, {at(seed, 100)} and step 101 "
           f"{at(seed, 101)} (the others' median: {other['median_ms']:.0f} ms). "
           if cfg["steps"] > 101 else
           "step 100 (the loss alone) was not reached (`--steps` <= 101). ")
        + ("Without stalls, the" if n_stalls else "The")
        + f" hook's mean over {cfg['steps']} steps, save steps included, is "
        f"{seed['mean_without_stalls_ms']} ms against the baseline's {steady_base} ms "
        f"({_pct(seed['mean_without_stalls_ms'], steady_base)}); over a real job, where the "
        "`relu_input` save recurs only every 500 steps, the seed config costs little more "
        "than its steady state.\n\n"
        f"**Every step.** Saving weights, gradients and every ReLU input each step "
        f"({eager_mb:.0f} MB) makes the median step "
        f"{eager['median_ms'] / base['median_ms']:.1f}x the baseline's: the tensors are "
        "copied to numpy, serialised and written in the training thread (median of each "
        f"run's first five steps {eager_first:.0f} ms, of its last five {eager_last:.0f} ms"
        + ("; the steps slow down as the written data piles up"
           if eager_last > 1.1 * eager_first else "")
        + "). Such a config is for short runs only; large save intervals keep the hook "
        "cheap.\n\n"
        f"**Profiler.** With only the system monitor running (a thread sampling every "
        f"{cfg['profiler']['ProfilingIntervalInMilliseconds']} ms) the steps take "
        f"{outside['median_ms']} ms at the median ({versus(outside['median_ms'])}); inside "
        f"the 10-step `torch.profiler` window {window['median_ms']} ms "
        f"({versus(window['median_ms'])}), and the window's last step, which "
        "also stops the profiler and writes the Chrome trace and operator table, "
        f"{export['mean_ms']:.0f} ms, once per job. Over {cfg['steps']} steps that export "
        f"alone adds {(export['mean_ms'] - outside['median_ms']) / cfg['steps']:.0f} ms to "
        "the mean step; over a job of thousands of steps it vanishes.\n"
    )


def main() -> None:
    result = json.loads((RESULTS / "debugger.json").read_text())
    (RESULTS / "debugger.md").write_text(markdown(result))


if __name__ == "__main__":
    main()
