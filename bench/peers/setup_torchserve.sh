#!/usr/bin/env bash
# TorchServe 0.12.0 for bench/serve_peers.py, in its own venv (bench/.venv-torchserve, gitignored).
# Needs Java 17 (Debian's openjdk-17-jre-headless; installed with apt-get when missing) and
# installs pyyaml and captum beside TorchServe (its image_classifier handler imports captum).
# torch/torchvision are the project's pins, so every server in the bench runs the same torch.
# onnxruntime is for bench/serve_means.py (timing ONNX Runtime on the same graph): it needs a
# protobuf newer than the one smdebug pins in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-torchserve
if ! command -v java >/dev/null || ! java -version 2>&1 | grep -q 'version "17'; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openjdk-17-jre-headless >/dev/null
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet torch==2.14.1 torchvision==0.29.1 numpy==2.2.6 \
    torchserve==0.12.0 torch-model-archiver==0.12.0 pyyaml captum pillow onnxruntime
"$venv/bin/python" -c "import ts, torch, captum, yaml; print('torchserve', ts.__version__, 'torch', torch.__version__)"
