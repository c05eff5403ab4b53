#!/usr/bin/env bash
# The main job on the embedded sample, no AWS and no Docker: train a ResNet-18 on
# scikit-learn's handwritten digits (with the seed's Debugger hook and Profiler configs in
# test_dir), evaluate the Debugger rules into an HTML report, serve the model with the same
# `serve` command the image runs, and predict the held-out digits through HTTP.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
PATH="$root/.venv/bin:$PATH"
port="${PORT:-8080}"
url="http://127.0.0.1:$port"
logs="$here/logs"   # train.log and serve.log of the last demo
mkdir -p "$logs"

echo "== 1/4 train (local process against local_test/test_dir) =="
"$here/train_local.sh" --fresh --process | tee "$logs/train.log" \
    | grep --line-buffered -E "Validation-accuracy|Test set|model saved|Reporting|failed" || true
if [[ ! -f "$here/test_dir/output/success" ]]; then
    echo "training failed:"; cat "$here/test_dir/output/failure"; exit 1
fi
best="$(python -c "import json,sys; m=json.load(open(sys.argv[1]))['metrics']; print(f\"{100*m['validation:accuracy']:.1f}\")" "$here/test_dir/model/metadata.json")"
echo "validation accuracy of the exported model: ${best}%"

echo "== 2/4 Debugger rules and Profiler report (local_test/debug_report.sh) =="
"$here/debug_report.sh" "$here/test_dir" 2> "$logs/debug_report.log" \
    || { echo "--- debug_report.log"; tail -30 "$logs/debug_report.log"; exit 1; }

echo "== 3/4 serve (gunicorn on $url) =="
SAGEMAKER_BASE_DIR="$here/test_dir" SAGEMAKER_BIND_TO_PORT="$port" serve > "$logs/serve.log" 2>&1 &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

echo "== 4/4 predict held-out digits (never seen in training) =="
python "$here/predict_folder.py" "$here/heldout" --url "$url" --wait 120 \
    || { echo "--- serve.log"; tail -30 "$logs/serve.log"; exit 1; }
