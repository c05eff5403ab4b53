#!/usr/bin/env python3
"""Our `serve` against its peers, in one run on this machine: requests/s and latency.

For ResNet-18 and ResNet-50 (1000 classes, the same random weights in every server) at 224x224,
each server answers one photo-like 500x375 JPEG, sent closed-loop by the shared keep-alive
client (bench/loadgen.py) for ``--seconds`` at concurrency 1 and 8:

* ``serve`` with its defaults (the artifact as `train` writes it: weights + model.onnx);
* the naive peer: flask + gunicorn, 2 sync workers, torch at 1 thread, PIL + torchvision
  transforms, eager fp32 (bench/peers/naive_app.py);
* TorchServe 0.12.0 with its stock image_classifier handler, in each configuration of
  bench/peers/torchserve.py (out of the box, 2 workers x 1 thread, 1 worker x 2 threads); the
  best at concurrency 8 is its entry in the table. Needs bench/peers/setup_torchserve.sh once.

Also the cold start of `serve` (process start to the first 200 on /ping, which it answers only
after a warm-up inference; a request is sent at once to check it really answers) for each
model, ``--cold-starts`` times. Writes bench/results/serve_peers.{json,md}. Timings are
recorded, never asserted. Run it alone on the machine (e.g. under flock -x).

    .venv/bin/python bench/serve_peers.py [--seconds 20] [--models 18 50]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, servers
from bench.loadgen import Target, closed_loop
from bench.peers import torchserve

JPEG = "image/jpeg"
NAIVE = "naive flask + gunicorn (2 sync workers, torch 1 thread, eager fp32)"


def first_answer(port: int, path: str, body: bytes, timeout: float = 300) -> float:
    """Poll ``path`` with the image until it answers 200; seconds until then."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body, {"Content-Type": JPEG})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no 200 from {path} within {timeout}s")


def measure(name: str, process: servers.Process, port: int, path: str, body: bytes,
            args: argparse.Namespace) -> dict:
    try:
        ping = process.wait_http(port, "/ping")
        first_answer(port, path, body)
        answer = time.monotonic() - process.started
        target = Target("127.0.0.1", port, path, body, {"Content-Type": JPEG})
        runs = [closed_loop(target, c, args.seconds) for c in args.concurrency]
    finally:
        process.stop()
    print(f"  {name}: " + "; ".join(f"C={r['concurrency']} {r['requests_per_second']} rps "
                                    f"p50 {r['p50_ms']} p99 {r['p99_ms']} ms" for r in runs),
          flush=True)
    return {"server": name, "ping_200_s": round(ping, 2), "first_answer_s": round(answer, 2),
            "runs": runs}


def at(entry: dict, concurrency: int) -> dict:
    return next(r for r in entry["runs"] if r["concurrency"] == concurrency)


def cold_starts(base: Path, body: bytes, times: int, tmp: Path) -> list[dict]:
    """Process start -> first /ping 200, then one request that must answer 200 at once."""
    out = []
    for i in range(times):
        process, port = servers.start_serve(base, tmp / f"cold-{i}.log")
        try:
            ping = process.wait_http(port, "/ping")
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/invocations", body, {"Content-Type": JPEG})
            response = conn.getresponse()
            response.read()
            out.append({"ping_200_s": round(ping, 2), "first_request_status": response.status,
                        "first_request_ms": round(1000 * (time.monotonic() - started), 1)})
        finally:
            process.stop()
    return out


def bench_model(depth: int, body: bytes, args: argparse.Namespace, tmp: Path) -> dict:
    print(f"resnet{depth}", flush=True)
    base = tmp / f"opt_ml_{depth}"
    model_dir = servers.write_model(base, depth)
    entries = []
    process, port = servers.start_serve(base, tmp / f"serve-{depth}.log")
    ours = measure("serve (defaults)", process, port, "/invocations", body, args)
    port = servers.free_port()
    naive = servers.Process(
        [str(servers.BIN / "gunicorn"), "-w", "2", "-k", "sync", "-b", f"127.0.0.1:{port}",
         "bench.peers.naive_app:app"],
        {**servers.serve_env(base, port), "NAIVE_MODEL_DIR": str(model_dir),
         "OMP_NUM_THREADS": "1"}, tmp / f"naive-{depth}.log")
    entries.append(measure(NAIVE, naive, port, "/invocations", body, args))
    skipped = torchserve.ensure()
    if skipped is None:
        store = torchserve.archive(model_dir, depth, servers.IMAGENET_CLASSES,
                                   tmp / f"torchserve-{depth}")
        path = f"/predictions/{torchserve.MODEL_NAME}"
        for config in torchserve.CONFIGS:
            process, port = torchserve.start(store, config, tmp / f"torchserve-{depth}")
            entries.append(measure(f"TorchServe 0.12.0, {config.name}", process, port, path,
                                   body, args))
    else:
        print(f"  TorchServe skipped: {skipped}")
    best = max(entries, key=lambda e: at(e, 8)["requests_per_second"])
    torchserve_entries = [e for e in entries if e["server"].startswith("TorchServe")]
    result = {
        "model": f"resnet{depth}",
        "ours": ours,
        "peers": entries,
        "best_peer": best["server"],
        "best_torchserve": max(torchserve_entries,
                               key=lambda e: at(e, 8)["requests_per_second"])["server"]
        if torchserve_entries else None,
        "torchserve_skipped": skipped,
        "ratios": ratios(ours, best),
    }
    if args.cold_starts:
        result["cold_starts"] = cold_starts(base, body, args.cold_starts, tmp)
    return result


def ratios(ours: dict, best: dict) -> dict:
    o8, b8, o1, b1 = at(ours, 8), at(best, 8), at(ours, 1), at(best, 1)
    return {
        "c8_throughput": round(o8["requests_per_second"] / b8["requests_per_second"], 2),
        "c8_p99": round(o8["p99_ms"] / b8["p99_ms"], 2),
        "c8_p50": round(o8["p50_ms"] / b8["p50_ms"], 2),
        "c1_p50": round(o1["p50_ms"] / b1["p50_ms"], 2),
        "c1_p99": round(o1["p99_ms"] / b1["p99_ms"], 2),
        "c1_throughput": round(o1["requests_per_second"] / b1["requests_per_second"], 2),
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Serving: `serve` vs. its peers",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}; {', '.join(m['cpu_features'])}),"
        f" {m['memory_gib']} GiB, no GPU, load average {m['load_average_at_start']} at the "
        f"start, every server in this one run; conditions: {result['conditions']}. "
        f"Client and servers on the same machine. Each figure: one photo-like "
        f"{result['payload']['width']}x{result['payload']['height']} JPEG "
        f"({result['payload']['bytes']} bytes), closed loop for {result['seconds']} s from "
        "bench/loadgen.py's keep-alive client; the same random weights (1000 classes) in every "
        "server, input 224x224. `serve` runs with its defaults: on this CPU (AMX) that is "
        "OpenVINO in bf16 on the artifact's model.onnx, 2 workers x 1 thread, dynamic batching "
        "up to 8 — see bench/results/serve_means.md for what each part is worth, and "
        "bench/results/serve_agreement.md for the accuracy of bf16 against fp32.",
        "",
    ]
    for model in result["models"]:
        r = model["ratios"]
        lines += [
            f"## {model['model']}",
            "",
            f"Best peer at C=8: **{model['best_peer']}**. `serve` / best peer: throughput at "
            f"C=8 **{r['c8_throughput']}x** (goal >= 1.5x), p99 at C=8 **{r['c8_p99']}x** "
            f"(goal <= 0.7x), p50 at C=1 **{r['c1_p50']}x** and p99 at C=1 {r['c1_p99']}x "
            "(goal <= 1x).",
            "",
            "| server | C=1 rps | C=1 p50 / p99 ms | C=8 rps | C=8 p50 / p99 ms | errors "
            "| first /ping 200 | first answer |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for entry in [model["ours"], *model["peers"]]:
            c1, c8 = at(entry, 1), at(entry, 8)
            errors = sum(sum(run["errors"].values()) for run in entry["runs"])
            mark = " (best TorchServe)" if entry["server"] == model["best_torchserve"] else ""
            lines.append(
                f"| {entry['server']}{mark} | {c1['requests_per_second']} | {c1['p50_ms']} / "
                f"{c1['p99_ms']} | {c8['requests_per_second']} | {c8['p50_ms']} / "
                f"{c8['p99_ms']} | {errors} | {entry['ping_200_s']} s | "
                f"{entry['first_answer_s']} s |")
        if model.get("torchserve_skipped"):
            lines.append(f"\nTorchServe not measured: {model['torchserve_skipped']}")
        if model.get("cold_starts"):
            times = [c["ping_200_s"] for c in model["cold_starts"]]
            first = [c["first_request_ms"] for c in model["cold_starts"]]
            lines += ["", f"Cold start of `serve` (process start to the first /ping 200), "
                      f"{len(times)} runs: median {statistics.median(times)} s, max "
                      f"{max(times)} s; the request sent right after answered "
                      f"{sorted({c['first_request_status'] for c in model['cold_starts']})} "
                      f"in a median {statistics.median(first)} ms."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = servers.bench_arguments(__doc__, "serve_peers")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--models", type=int, nargs="+", default=[18, 50])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cold-starts", type=int, default=3)
    args = parser.parse_args()
    width, height = 500, 375
    body = servers.photo_jpeg(width, height)
    result = {"machine": servers.machine(), "seconds": args.seconds,
              "conditions": args.conditions,
              "payload": {"width": width, "height": height, "bytes": len(body)}}
    with tempfile.TemporaryDirectory() as tmp:
        result["models"] = [bench_model(d, body, args, Path(tmp)) for d in args.models]
    report.save(result, args.out, markdown)


if __name__ == "__main__":
    main()
