#!/bin/bash
# Container entry point: SageMaker runs `docker run IMAGE train` or `docker run IMAGE serve`.
# - picks the CUDA forward-compatibility driver libraries when the host driver is older than
#   the one this image's CUDA needs (data-center GPUs on older SageMaker host drivers);
# - dispatches to the role, with exec so SIGTERM reaches Python directly;
# - refuses roles this image does not have (the serve images have no `train`);
# - `--help`, `-h` or `help` prints the image's usage.
set -euo pipefail

# version_lt A B: true when version A sorts before version B.
version_lt() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }

use_cuda_compat() {
    local compat=/usr/local/cuda/compat/libcuda.so.1 driver compat_driver
    [ -e "$compat" ] || return 0
    driver=$(sed -n 's/^NVRM version:.* \([0-9][0-9]*\.[0-9.]*\) .*/\1/p' /proc/driver/nvidia/version 2>/dev/null | head -n1 || true)
    [ -n "$driver" ] || return 0   # no GPU or no driver: nothing to do
    # libcuda.so.1 -> libcuda.so.<driver version of the compat package>
    compat_driver=$(readlink "$compat" | sed 's/^libcuda\.so\.//')
    if version_lt "$driver" "$compat_driver"; then
        echo "host NVIDIA driver $driver is older than $compat_driver: using CUDA forward compatibility"
        export LD_LIBRARY_PATH="/usr/local/cuda/compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
}

roles="${SM_VISION_ROLES:-train serve}"

usage() {
    echo "sm-vision: SageMaker training and hosting for image classification and segmentation."
    echo "This image answers: ${roles// /, }${SM_VISION_IMAGE_FLAVOUR:+ (${SM_VISION_IMAGE_FLAVOUR} flavour)}."
    echo
    echo "usage: docker run [docker options] IMAGE {${roles// /|}}    (or any command, e.g. bash)"
    echo
    if [[ " $roles " == *" train "* ]]; then
        echo "  train   SageMaker's training contract: reads /opt/ml/input, writes /opt/ml/model"
        echo "          (model.safetensors, metadata.json, model.onnx) and /opt/ml/output/success|failure"
    fi
    echo "  serve   SageMaker's hosting contract on \$SAGEMAKER_BIND_TO_PORT (8080): GET /ping,"
    echo "          POST /invocations, GET /execution-parameters, for the model in /opt/ml/model"
    echo
    echo "examples:"
    if [[ " $roles " == *" train "* ]]; then
        echo "  docker run --rm -v \$PWD/opt_ml:/opt/ml IMAGE train"
    fi
    echo "  docker run --rm -p 8080:8080 -v \$PWD/opt_ml/model:/opt/ml/model:ro IMAGE serve"
    echo
    echo "Settings are environment variables (SAGEMAKER_MODEL_SERVER_WORKERS, SM_VISION_PRECISION,"
    echo "...): see the README's Serving and Training sections."
}

role="${1:-}"
case "$role" in
    -h|--help|help)
        usage
        exit 0
        ;;
    train|serve)
        if [[ " $roles " != *" $role "* ]]; then
            echo "error: this image answers: $roles (not '$role'); use the training image to train" >&2
            exit 64
        fi
        shift
        use_cuda_compat
        exec "$role" "$@"
        ;;
    "")
        usage >&2
        exit 64
        ;;
    *)
        use_cuda_compat
        exec "$@"
        ;;
esac
