#!/usr/bin/env bash
# Train against local_test/test_dir, a fake /opt/ml tree (config files are checked in; the
# digits data is generated on first use), the way SageMaker runs the image.
#   local_test/train_local.sh [--fresh] [--docker|--process]
#     --fresh    delete old checkpoints, model and output first
#     --docker   run `docker run IMAGE train` (IMAGE: $TRAIN_IMAGE, default sm-vision-train:latest)
#     --process  run the `train` command from .venv as a local process
# Default: the image when a Docker engine is reachable and the image is built, else a process.
# With an NVIDIA container runtime, the container gets `--gpus all`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
test_dir="$here/test_dir"
image="${TRAIN_IMAGE:-sm-vision-train:latest}"
PATH="$root/.venv/bin:$PATH"
source "$here/lib.sh"

mode=auto
for arg in "$@"; do
    case "$arg" in
        --fresh) rm -rf "$test_dir/checkpoints" "$test_dir"/model/* "$test_dir"/output/* ;;
        --docker) mode=docker ;;
        --process) mode=process ;;
        *) echo "unknown option $arg; see the header of $0" >&2; exit 64 ;;
    esac
done
[[ "$mode" == auto ]] && mode="$(pick_mode "$image")"

if [[ ! -d "$test_dir/input/data/train" ]]; then
    tmp="$(mktemp -d)"
    python "$here/digits_data.py" "$tmp"
    mv "$tmp/train" "$tmp/validation" "$test_dir/input/data/"
    rm -rf "$here/heldout" && mv "$tmp/test" "$here/heldout"   # never trained on; for predict
    rm -rf "$tmp"
fi
# A finished job leaves output/success; clear outcome files so this run reports its own.
rm -f "$test_dir/output/success" "$test_dir/output/failure"

if [[ "$mode" == docker ]]; then
    echo "training in $image (docker run ... train)"
    exec docker run --rm $(gpu_flags) --shm-size 2g -v "$test_dir:/opt/ml" "$image" train
fi
echo "training as a local process (.venv/bin/train)"
SAGEMAKER_BASE_DIR="$test_dir" exec train
