#!/bin/bash
# pip install (or `--wheel`: pip wheel) inside an image build, trusting BUILD_CA_URL's CA bundle
# for this one command when the build passes one (a TLS-intercepting proxy). The bundle lives in
# /tmp for the duration of the command and is deleted before the step ends, so no layer has it.
set -euo pipefail
command=install
if [[ "${1:-}" == --wheel ]]; then command=wheel; shift; fi
ca=""
if [[ -n "${BUILD_CA_URL:-}" ]]; then
    ca="$(mktemp /tmp/build-ca.XXXXXX)"
    trap 'rm -f "$ca"' EXIT
    curl -fsS "$BUILD_CA_URL" -o "$ca"
    export PIP_CERT="$ca"
fi
pip "$command" --no-cache-dir "$@"
