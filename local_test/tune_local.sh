#!/usr/bin/env bash
# Tune hyperparameters on this machine: each trial is the `train` command (from .venv) on its
# own fake /opt/ml tree, with SageMaker HPO's ranges, objective regex and Minimize semantics.
#   local_test/tune_local.sh [extra launch.tune flags, e.g. --max-jobs 6 --strategy random]
# Data: the digits demo set, generated once under $TUNE_ROOT (default /tmp/sm-vision-tuning).
# Results: a table of trials, the best one, and $TUNE_ROOT/<time>/trials.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
tune_root="${TUNE_ROOT:-${TMPDIR:-/tmp}/sm-vision-tuning}"
data="$tune_root/data"
PATH="$root/.venv/bin:$PATH"

if [[ ! -d "$data/train" ]]; then
    python "$here/digits_data.py" "$data"
fi

cd "$root"
exec python -m launch.tune --local \
    --work-dir "$tune_root/$(date +%Y%m%d-%H%M%S)" \
    --channel "train=$data/train" --channel "validation=$data/validation" \
    --channel "test=$data/test" --data-format folder \
    --hp num_layers=18 --hp image_shape=3,32,32 --hp epochs=2 --hp optimizer=adam \
    --hp num_classes=10 --hp seed=0 --hp num_workers=0 \
    --range lr=continuous:0.0001:0.01:log --range batch-size=categorical:16,32,64 \
    --max-jobs 4 "$@"
