#!/usr/bin/env bash
# Send one file to a running server's /invocations and print the answer.
#   local_test/predict.sh FILE [CONTENT_TYPE]
# CONTENT_TYPE defaults from the extension: .jpg/.jpeg image/jpeg, .png image/png,
# .npy application/x-npy, .json application/json, .jsonl application/jsonlines, else
# application/x-image. Environment: ACCEPT (default application/json; e.g.
# "application/json; verbose=true" for top-5 class names), URL (default http://localhost:8080).
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 || ! -f "$1" ]]; then
    echo "usage: $0 FILE [CONTENT_TYPE]" >&2
    exit 64
fi
file="$1"
case "${file,,}" in
    *.jpg | *.jpeg) guessed=image/jpeg ;;
    *.png) guessed=image/png ;;
    *.npy) guessed=application/x-npy ;;
    *.json) guessed=application/json ;;
    *.jsonl | *.jsonlines) guessed=application/jsonlines ;;
    *) guessed=application/x-image ;;
esac
content_type="${2:-$guessed}"

status=0
curl --silent --show-error --fail-with-body \
    --data-binary "@$file" \
    -H "Content-Type: $content_type" \
    -H "Accept: ${ACCEPT:-application/json}" \
    "${URL:-http://localhost:8080}/invocations" || status=$?
echo  # the JSON answer has no trailing newline
exit "$status"
