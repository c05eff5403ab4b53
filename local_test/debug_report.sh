#!/usr/bin/env bash
# Evaluate SageMaker Debugger's rules on a finished local job and write the HTML report.
#   local_test/debug_report.sh [BASE_DIR] [python -m train.debugger report options...]
# BASE_DIR: the job's /opt/ml tree (default local_test/test_dir, where train_local.sh and the
# demo train with the seed's debughookconfig.json and profilerconfig.json). Writes
# BASE_DIR/output/debug-report/{report.html,verdicts.json} and prints the verdicts in one line.
# Works on a Docker run too: the container writes into the same mounted tree.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
PATH="$root/.venv/bin:$PATH"
base="$here/test_dir"
if [[ $# -gt 0 && "$1" != -* ]]; then base="$1"; shift; fi
cd "$root"
exec python -m train.debugger report --base-dir "$base" "$@"
