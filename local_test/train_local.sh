#!/usr/bin/env bash
# Run the image's `train` entry point as a local process against local_test/test_dir, a fake
# /opt/ml tree (config files are checked in; the digits data is generated on first use).
#   local_test/train_local.sh            # train with test_dir/input/config/hyperparameters.json
#   local_test/train_local.sh --fresh    # also delete old checkpoints, model and output first
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
test_dir="$here/test_dir"
PATH="$root/.venv/bin:$PATH"

if [[ "${1:-}" == "--fresh" ]]; then
    rm -rf "$test_dir/checkpoints" "$test_dir"/model/* "$test_dir"/output/*
fi
if [[ ! -d "$test_dir/input/data/train" ]]; then
    tmp="$(mktemp -d)"
    python "$here/digits_data.py" "$tmp"
    mv "$tmp/train" "$tmp/validation" "$test_dir/input/data/"
    rm -rf "$here/heldout" && mv "$tmp/test" "$here/heldout"   # never trained on; for predict
    rm -rf "$tmp"
fi
# A finished job leaves output/success; clear outcome files so this run reports its own.
rm -f "$test_dir/output/success" "$test_dir/output/failure"
SAGEMAKER_BASE_DIR="$test_dir" train
