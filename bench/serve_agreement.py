#!/usr/bin/env python3
"""How far the fast serving paths are from the exact fp32 answer, on a real held-out set.

Trains a ResNet-18 on the demo's real handwritten digits (scikit-learn's ``load_digits``, split
by local_test/digits_data.py) with the real `train` command at 64x64, then serves the 270 test
images (never seen in training) twice: as 64x64 PNGs, and as 256x256 JPEGs (so JPEG decoding
downscales in the DCT domain). Each serving path answers in-process through the same handler
the server uses:

* ``exact``: torch fp32, training's own preprocessing (torchvision) — the reference;
* the default on this CPU: OpenVINO, bf16 where the CPU computes bf16 (AMX), Pillow
  preprocessing with JPEG draft;
* OpenVINO fp32; torch bf16 (oneDNN autocast) and torch fp32 with the fast preprocessing.

For each: top-1 agreement with the reference, the largest and mean |probability difference|
over every class of every image, and accuracy against the labels. Writes
bench/results/serve_agreement.{json,md}.

    .venv/bin/python bench/serve_agreement.py [--epochs 4]
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report, servers

PATHS = {
    "exact (reference): torch fp32, torchvision preprocessing": {"SM_VISION_PRECISION": "exact"},
    "default: OpenVINO auto precision, Pillow preprocessing": {},
    "OpenVINO fp32": {"SM_VISION_RUNTIME": "openvino", "SM_VISION_PRECISION": "fp32"},
    "torch bf16 (oneDNN autocast)": {"SM_VISION_RUNTIME": "torch", "SM_VISION_PRECISION": "bf16"},
    "torch fp32, Pillow preprocessing": {"SM_VISION_RUNTIME": "torch",
                                          "SM_VISION_PRECISION": "fp32"},
}


def train(base: Path, data: Path, epochs: int) -> None:
    from tests.conftest import make_opt_ml

    make_opt_ml(base, {"num_layers": "18", "image_shape": "3,64,64", "epochs": str(epochs),
                       "mini_batch_size": "32", "optimizer": "adam", "learning_rate": "0.001",
                       "seed": "0", "num_workers": "0", "num_classes": "10"},
                {"train": data / "train", "validation": data / "validation"})
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(base)}
    done = subprocess.run([str(servers.BIN / "train")], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])


def heldout(data: Path) -> tuple[list[bytes], list[bytes], np.ndarray]:
    from PIL import Image

    pngs, jpegs, labels = [], [], []
    for path in sorted((data / "test").rglob("*.png")):
        image = Image.open(path).convert("RGB")
        small, big = io.BytesIO(), io.BytesIO()
        image.resize((64, 64), Image.BICUBIC).save(small, "PNG")
        image.resize((256, 256), Image.BICUBIC).save(big, "JPEG", quality=90)
        pngs.append(small.getvalue())
        jpegs.append(big.getvalue())
        labels.append(int(path.parent.name))
    return pngs, jpegs, np.array(labels)


def answers(base: Path, extra: dict[str, str], inputs: list[bytes]) -> tuple[np.ndarray, str]:
    from serve import model
    from serve.batcher import Deadline
    from serve.environment import ServingEnv

    env = ServingEnv.from_env({"SAGEMAKER_BASE_DIR": str(base), **extra})
    handler = model.load(env)
    runtime = f"{handler.runtime.name} {handler.runtime.precision}"
    return handler.predict(inputs, Deadline(None)), runtime


def compare(reference: np.ndarray, other: np.ndarray, labels: np.ndarray) -> dict:
    diff = np.abs(reference - other)
    return {
        "top1_agreement": round(float((reference.argmax(1) == other.argmax(1)).mean()), 4),
        "disagreements": int((reference.argmax(1) != other.argmax(1)).sum()),
        "max_abs_prob_diff": float(diff.max()),
        "mean_abs_prob_diff": float(diff.mean()),
        "accuracy": round(float((other.argmax(1) == labels).mean()), 4),
    }


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Serving: agreement of the fast paths with exact fp32",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['cpu']}; {', '.join(m['cpu_features'])})."
        f" Conditions: {result['conditions']}. Model: ResNet-18 trained by `train` on the digits "
        f"data ({result['epochs']} epochs, 64x64). Held-out set: the 270 test images (never "
        "trained on), once as 64x64 PNGs and once as 256x256 JPEGs (quality 90; JPEG draft "
        f"decoding applies), {result['images']} answers in all. Reference: "
        "`SM_VISION_PRECISION=exact`.",
        "",
        "| serving path | runtime | top-1 agreement | disagreements | max abs prob. diff | "
        "mean abs prob. diff | accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in result["paths"].items():
        lines.append(f"| {name} | {row['runtime']} | {100 * row['top1_agreement']:.2f} % | "
                     f"{row['disagreements']} | {row['max_abs_prob_diff']:.2e} | "
                     f"{row['mean_abs_prob_diff']:.2e} | {100 * row['accuracy']:.2f} % |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = servers.bench_arguments(__doc__, "serve_agreement")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    from tests.conftest import load_local_test_script

    result: dict = {"machine": servers.machine(), "epochs": args.epochs, "paths": {},
                    "conditions": args.conditions}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits"
        load_local_test_script("digits_data").build(data, size=64, seed=0)
        base = Path(tmp) / "opt_ml"
        train(base, data, args.epochs)
        pngs, jpegs, labels = heldout(data)
        inputs, labels = pngs + jpegs, np.concatenate([labels, labels])
        result["images"] = len(inputs)
        reference = None
        for name, extra in PATHS.items():
            probabilities, runtime = answers(base, extra, inputs)
            if reference is None:
                reference = probabilities
            result["paths"][name] = {"runtime": runtime, "settings": extra,
                                     **compare(reference, probabilities, labels)}
            print(name, result["paths"][name], flush=True)
    report.save(result, args.out, markdown)


if __name__ == "__main__":
    main()
