#!/usr/bin/env bash
# Serve local_test/test_dir/model (written by train_local.sh) on :8080, the way SageMaker
# runs the hosting image (`serve`, no arguments). Ctrl-C (SIGINT) or SIGTERM stops it.
#   local_test/serve_local.sh [--process|--docker]
#     --process  run the `serve` command from .venv (or PATH) as a local process (default)
#     --docker   run `docker run IMAGE serve` (IMAGE: $SERVE_IMAGE, default sm-vision-serve:latest)
# Environment: PORT (default 8080), and any SAGEMAKER_* serving variable, e.g.
#   SAGEMAKER_MODEL_SERVER_WORKERS=2 local_test/serve_local.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
test_dir="$here/test_dir"
image="${SERVE_IMAGE:-sm-vision-serve:latest}"
port="${PORT:-8080}"
PATH="$root/.venv/bin:$PATH"
source "$here/lib.sh"

mode=process
for arg in "$@"; do
    case "$arg" in
        --docker) mode=docker ;;
        --process) mode=process ;;
        *) echo "unknown option $arg; see the header of $0" >&2; exit 64 ;;
    esac
done

if [[ ! -f "$test_dir/model/metadata.json" ]]; then
    echo "no model in $test_dir/model; run local_test/train_local.sh first" >&2
    exit 1
fi

if [[ "$mode" == docker ]]; then
    echo "serving $test_dir/model from $image on :$port (docker run ... serve)"
    exec docker run --rm $(gpu_flags) -p "$port:8080" -v "$test_dir:/opt/ml" "$image" serve
fi
echo "serving $test_dir/model on :$port as a local process (.venv/bin/serve)"
SAGEMAKER_BASE_DIR="$test_dir" SAGEMAKER_BIND_TO_PORT="$port" exec serve
