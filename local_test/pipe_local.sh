#!/usr/bin/env bash
# Train in Pipe mode as a local process: a fresh SageMaker tree whose train and validation
# channels are fed, epoch by epoch, through FIFOs by local_test/pipe_emulator.py.
#   local_test/pipe_local.sh                         # the reference digits .rec files
#   local_test/pipe_local.sh TRAIN.rec VALIDATION.rec [HYPERPARAMETERS.json]
# Prints the tree's location; the model ends up in <tree>/model.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
shared="$root/tests/fixtures/reference/recordio"
train_rec="${1:-$shared/digits_train.rec}"
validation_rec="${2:-$shared/digits_val.rec}"
hyperparameters="${3:-$here/test_dir/input/config/hyperparameters.json}"
PATH="$root/.venv/bin:$PATH"

tree="$(mktemp -d "${TMPDIR:-/tmp}/pipe_job.XXXXXX")"
mkdir -p "$tree/input/config"
cp "$hyperparameters" "$tree/input/config/hyperparameters.json"
echo "Pipe-mode job in $tree"
python "$here/pipe_emulator.py" --base-dir "$tree" --configure \
    --rec "train=$train_rec" --rec "validation=$validation_rec" -- train
