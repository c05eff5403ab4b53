"""TorchServe 0.12.0 as a peer for bench/serve_peers.py: archive, config, start.

It runs from its own venv (bench/.venv-torchserve, made by bench/peers/setup_torchserve.sh) with
its stock ``image_classifier`` handler, on the same weights as the other servers, in eager fp32.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.servers import REPO, Process, free_port

VENV = REPO / "bench" / ".venv-torchserve"
SETUP = REPO / "bench" / "peers" / "setup_torchserve.sh"
MODEL_NAME = "resnet"
_BLOCKS = {18: ("BasicBlock", [2, 2, 2, 2]), 34: ("BasicBlock", [3, 4, 6, 3]),
           50: ("Bottleneck", [3, 4, 6, 3]), 101: ("Bottleneck", [3, 4, 23, 3])}


@dataclass(frozen=True)
class Config:
    name: str
    workers: int | None  # None: TorchServe's default (one per core)
    omp_threads: int | None  # None: not set (torch's default: all cores, in every worker)


CONFIGS = (
    Config("out of the box", None, None),
    Config("2 workers x 1 thread", 2, 1),
    Config("1 worker x 2 threads", 1, 2),
)


def ensure() -> str | None:
    """Make the venv when it is missing (bench/peers/setup_torchserve.sh: Java 17 from apt,
    TorchServe from PyPI); None when it is ready, else why not."""
    if not (VENV / "bin" / "torchserve").exists():
        done = subprocess.run([str(SETUP)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"{SETUP.relative_to(REPO)} failed: {(done.stdout + done.stderr)[-500:]}"
    return None


def archive(model_dir: Path, depth: int, num_classes: int, work: Path) -> Path:
    """A .mar with the artifact's weights (a plain state_dict) in a torchvision ResNet."""
    block, layers = _BLOCKS[depth]
    work.mkdir(parents=True, exist_ok=True)
    (work / "model.py").write_text(
        "from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: F401\n\n\n"
        "class Network(ResNet):\n"
        "    def __init__(self):\n"
        f"        super().__init__({block}, {layers}, num_classes={num_classes})\n")
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(model_dir / "model.safetensors"), work / "weights.pth")
    store = work / "store"
    store.mkdir(exist_ok=True)
    subprocess.run([str(VENV / "bin" / "torch-model-archiver"), "--model-name", MODEL_NAME,
                    "--version", "1.0", "--model-file", str(work / "model.py"),
                    "--serialized-file", str(work / "weights.pth"),
                    "--handler", "image_classifier", "--export-path", str(store), "--force"],
                   check=True)
    return store


def start(store: Path, config: Config, work: Path) -> tuple[Process, int]:
    port, management, metrics = free_port(), free_port(), free_port()
    lines = [f"inference_address=http://127.0.0.1:{port}",
             f"management_address=http://127.0.0.1:{management}",
             f"metrics_address=http://127.0.0.1:{metrics}",
             f"model_store={store}", f"load_models={MODEL_NAME}.mar",
             "install_py_dep_per_model=false"]
    if config.workers is not None:
        lines.append(f"default_workers_per_model={config.workers}")
    properties = work / f"config-{port}.properties"
    properties.write_text("\n".join(lines) + "\n")
    env = {"PATH": f"{VENV / 'bin'}:/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8"}
    if config.omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(config.omp_threads)
    command = [str(VENV / "bin" / "torchserve"), "--start", "--foreground", "--ncs",
               "--disable-token-auth", "--model-store", str(store), "--ts-config",
               str(properties)]
    return Process(command, env, work / f"torchserve-{port}.log", cwd=work), port
