#!/usr/bin/env python3
"""What each means of serving speed is worth on this machine, so the defaults are measured.

1. The network alone, in process, one thread, ms per image at batch 1 and 8, ResNet-18/50 at
   224: torch eager fp32 (the naive peer's), channels-last, oneDNN bf16 autocast,
   torch.compile, OpenVINO fp32 and bf16 on the artifact's model.onnx, and ONNX Runtime fp32 on
   the same graph (from bench/.venv-torchserve: onnxruntime needs a newer protobuf than the
   project's environment).
2. Preprocessing one image, ms: training's torchvision transform vs. the server's Pillow path
   (crop-box resize), on the 500x375 photo and on a 2000x1500 one (JPEG draft on and off).
3. Through the real server (ResNet-18, the 500x375 JPEG, closed loop, C=1 and C=8): workers x
   threads, dynamic batching on/off and its wait, and the runtime/precision.
4. Cold start of ResNet-50 (process start to the first /ping 200) with OpenVINO and with torch,
   and the first request's latency after /ping says ready (the warm-up's worth).

Writes bench/results/serve_means.{json,md}. Run it alone on the machine (flock -x).

    .venv/bin/python bench/serve_means.py [--seconds 10]
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, servers
from bench.loadgen import Target, closed_loop
from bench.peers import torchserve

SERVER_VARIANTS = {
    "defaults (2 workers x 1 thread, OpenVINO auto = bf16 here, batch <= 8, no wait)": {},
    "1 worker x 2 threads": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
    "no dynamic batching (batch 1)": {"SM_VISION_MAX_BATCH": "1"},
    "batching, waiting up to 2 ms for more": {"SM_VISION_MAX_BATCH_WAIT_MS": "2"},
    "OpenVINO fp32": {"SM_VISION_PRECISION": "fp32"},
    "torch bf16 (oneDNN autocast, channels-last)": {"SM_VISION_RUNTIME": "torch",
                                                    "SM_VISION_PRECISION": "bf16"},
    "torch fp32, Pillow preprocessing": {"SM_VISION_RUNTIME": "torch",
                                         "SM_VISION_PRECISION": "fp32"},
    "exact: torch fp32, torchvision preprocessing": {"SM_VISION_PRECISION": "exact"},
}

ORT_TIMER = """
import json, sys, time, statistics
import numpy as np, onnxruntime as ort
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
out = {}
for batch in (1, 8):
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    for _ in range(3):
        session.run(None, {"input": x})
    times = []
    for _ in range(int(sys.argv[2])):
        started = time.perf_counter()
        session.run(None, {"input": x})
        times.append(time.perf_counter() - started)
    out[batch] = 1000 * statistics.median(times) / batch
print(json.dumps(out))
"""


def median_ms(step: Callable[[], object], repeats: int, per: int = 1) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times) / per, 2)


def network_alone(depth: int, model_dir: Path, repeats: int) -> dict:
    import openvino as ov
    import torch

    from common.artifact import load_metadata, load_state_dict
    from serve.runtimes import build_network

    torch.set_num_threads(1)
    meta = load_metadata(model_dir)
    network = build_network(meta, load_state_dict(model_dir))
    channels_last = build_network(meta, load_state_dict(model_dir)).to(
        memory_format=torch.channels_last)
    rows: dict[str, dict] = {}
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224)
        xc = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            rows.setdefault("torch eager fp32", {})[batch] = median_ms(
                lambda x=x: network(x), repeats, batch)
            rows.setdefault("torch channels-last fp32", {})[batch] = median_ms(
                lambda xc=xc: channels_last(xc), repeats, batch)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                rows.setdefault("torch channels-last bf16 (oneDNN autocast)", {})[batch] = \
                    median_ms(lambda xc=xc: channels_last(xc), repeats, batch)
    if depth == 18:
        started = time.perf_counter()
        compiled = torch.compile(build_network(meta, load_state_dict(model_dir)))
        x = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            compiled(x)
            compile_s = time.perf_counter() - started
            rows["torch.compile fp32 (inductor)"] = {1: median_ms(lambda: compiled(x), repeats),
                                                     "compile_s": round(compile_s, 1)}
    core = ov.Core()
    for precision, hint in (("fp32", "f32"), ("bf16", "bf16")):
        compiled_model = core.compile_model(str(model_dir / "model.onnx"), "CPU", {
            "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False})
        request = compiled_model.create_infer_request()
        for batch in (1, 8):
            x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            rows.setdefault(f"OpenVINO {precision}", {})[batch] = median_ms(
                lambda x=x, r=request: r.infer({"input": x}), repeats, batch)
    python = torchserve.VENV / "bin" / "python"
    if python.exists():
        done = subprocess.run([str(python), "-c", ORT_TIMER, str(model_dir / "model.onnx"),
                               str(repeats)], capture_output=True, text=True)
        if done.returncode == 0:
            rows["ONNX Runtime fp32"] = {int(k): round(v, 2)
                                         for k, v in json.loads(done.stdout).items()}
        else:
            rows["ONNX Runtime fp32"] = {"error": done.stderr[-300:]}
    return rows


def preprocessing(repeats: int) -> dict:
    import io

    from PIL import Image

    from common.artifact import InputSpec
    from common.preprocessing import IMAGENET_MEAN, IMAGENET_STD, decode_image, eval_transform
    from serve import images

    spec = InputSpec(3, 224, 224, 224, IMAGENET_MEAN, IMAGENET_STD)
    transform = eval_transform(spec)
    rows = {}
    for width, height in ((500, 375), (2000, 1500)):
        photo = servers.photo_jpeg(500, 375)
        if width != 500:
            out = io.BytesIO()
            Image.open(io.BytesIO(photo)).resize((width, height), Image.BICUBIC).save(
                out, "JPEG", quality=90)
            photo = out.getvalue()
        rows[f"{width}x{height} JPEG"] = {
            "training's decode + torchvision transform": median_ms(
                lambda p=photo: transform(decode_image(p)), repeats),
            "Pillow, crop-box resize, no draft": median_ms(
                lambda p=photo: images.classification_input(
                    images.open_image(p, spec.resize, draft=False), spec), repeats),
            "Pillow, crop-box resize, JPEG draft (the server's)": median_ms(
                lambda p=photo: images.classification_input(
                    images.open_image(p, spec.resize, draft=True), spec), repeats),
        }
    return rows


def through_server(base: Path, body: bytes, seconds: float, tmp: Path,
                   variants: dict[str, dict[str, str]]) -> dict:
    target_headers = {"Content-Type": "image/jpeg"}
    rows = {}
    for name, env in variants.items():
        process, port = servers.start_serve(base, tmp / f"variant-{len(rows)}.log", **env)
        try:
            process.wait_http(port, "/ping")
            target = Target("127.0.0.1", port, "/invocations", body, target_headers)
            rows[name] = {"env": env, "runs": [closed_loop(target, c, seconds) for c in (1, 8)]}
        finally:
            process.stop()
        print(name, [(r["requests_per_second"], r["p50_ms"], r["p99_ms"])
                     for r in rows[name]["runs"]], flush=True)
    return rows


def cold_starts(base: Path, body: bytes, runs: int, tmp: Path) -> dict:
    rows = {}
    for name, env in (("OpenVINO (default)", {}), ("torch", {"SM_VISION_RUNTIME": "torch"})):
        samples = []
        for i in range(runs):
            process, port = servers.start_serve(base, tmp / f"cold-{name[:5]}-{i}.log", **env)
            try:
                ping = process.wait_http(port, "/ping")
                latencies = []
                for _ in range(4):
                    started = time.perf_counter()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
                    conn.getresponse().read()
                    latencies.append(round(1000 * (time.perf_counter() - started), 1))
                samples.append({"ping_200_s": round(ping, 2), "request_ms": latencies})
            finally:
                process.stop()
        rows[name] = {"runs": samples,
                      "median_ping_200_s": statistics.median(s["ping_200_s"] for s in samples)}
        print(name, rows[name], flush=True)
    return rows


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Serving: what each means is worth",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}; {', '.join(m['cpu_features'])}),"
        f" {m['memory_gib']} GiB, no GPU; conditions: {result['conditions']}. Random-weight "
        "ResNets (1000 classes) at 224x224.",
        "",
        "## 1. The network alone (in process, 1 thread), ms per image",
        "",
        "| runtime | ResNet-18 batch 1 | ResNet-18 batch 8 | ResNet-50 batch 1 "
        "| ResNet-50 batch 8 |",
        "|---|---|---|---|---|",
    ]
    r18, r50 = result["network"]["resnet18"], result["network"]["resnet50"]
    for name in r18.keys() | r50.keys():
        a, b = r18.get(name, {}), r50.get(name, {})
        extra = f" (compile {a['compile_s']} s)" if "compile_s" in a else ""
        lines.append(f"| {name}{extra} | {a.get(1, '-')} | {a.get(8, '-')} | {b.get(1, '-')} | "
                     f"{b.get(8, '-')} |")
    lines += ["", "## 2. Preprocessing one image, ms", "",
              "| image | " + " | ".join(next(iter(result["preprocessing"].values()))) + " |",
              "|---|---|---|---|"]
    for image, row in result["preprocessing"].items():
        lines.append(f"| {image} | " + " | ".join(str(v) for v in row.values()) + " |")
    lines += server_lines(result)
    lines += ["", "## 4. Cold start (ResNet-50) and warm-up", "",
              "| runtime | median first /ping 200 | runs (s) | first 4 requests after ready, ms |",
              "|---|---|---|---|"]
    for name, row in result["cold_start"].items():
        lines.append(f"| {name} | {row['median_ping_200_s']} s | "
                     f"{[s['ping_200_s'] for s in row['runs']]} | "
                     f"{[s['request_ms'] for s in row['runs']]} |")
    return "\n".join(lines) + "\n"


def server_lines(result: dict) -> list[str]:
    model = result.get("server_model", "resnet18")
    lines = ["", f"## 3. Through the server ({model}, {result['seconds']} s closed loop each)",
             "", "| variant | C=1 rps | C=1 p50 / p99 ms | C=8 rps | C=8 p50 / p99 ms |",
             "|---|---|---|---|---|"]
    for name, row in result["server"].items():
        c1, c8 = row["runs"]
        lines.append(f"| {name} | {c1['requests_per_second']} | {c1['p50_ms']} / {c1['p99_ms']}"
                     f" | {c8['requests_per_second']} | {c8['p50_ms']} / {c8['p99_ms']} |")
    return lines


def server_markdown(result: dict) -> str:
    m = result["machine"]
    return "\n".join([
        "# Serving: through the server, a few variants",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}), {m['memory_gib']} GiB; "
        f"conditions: {result['conditions']}. `bench/serve_means.py --server-only`.",
        *server_lines(result)]) + "\n"


def main() -> None:
    parser = servers.bench_arguments(__doc__, "serve_means")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cold-starts", type=int, default=3)
    parser.add_argument("--server-only", action="store_true",
                        help="only section 3 (through the server)")
    parser.add_argument("--server-model", type=int, choices=(18, 50), default=18)
    parser.add_argument("--variants", nargs="*", help="section 3 variants whose name holds "
                        "one of these words (default: all)")
    args = parser.parse_args()
    result: dict = {"machine": servers.machine(), "seconds": args.seconds,
                    "conditions": args.conditions, "network": {}}
    body = servers.photo_jpeg()
    with tempfile.TemporaryDirectory() as tmp:
        bases = {}
        for depth in (18, 50):
            bases[depth] = Path(tmp) / f"opt_ml_{depth}"
            servers.write_model(bases[depth], depth)
            if args.server_only:
                continue
            result["network"][f"resnet{depth}"] = network_alone(
                depth, bases[depth] / "model", args.repeats)
            print(f"resnet{depth}", result["network"][f"resnet{depth}"], flush=True)
        if args.server_only:  # section 3 alone, on another model or a few variants
            result["server_model"] = f"resnet{args.server_model}"
            variants = {k: v for k, v in SERVER_VARIANTS.items()
                        if not args.variants or any(w in k for w in args.variants)}
            result["server"] = through_server(bases[args.server_model], body, args.seconds,
                                              Path(tmp), variants)
            report.save(result, args.out, server_markdown)
            return
        result["preprocessing"] = preprocessing(args.repeats)
        print(result["preprocessing"], flush=True)
        result["server"] = through_server(bases[18], body, args.seconds, Path(tmp),
                                          SERVER_VARIANTS)
        result["cold_start"] = cold_starts(bases[50], body, args.cold_starts, Path(tmp))
    report.save(result, args.out, markdown)


if __name__ == "__main__":
    main()
