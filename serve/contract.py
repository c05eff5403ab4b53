"""Every name the SageMaker hosting contract fixes, in one place.

Paths derive from one base directory (``SAGEMAKER_BASE_DIR``, default ``/opt/ml``) so local runs
and tests can point the server at a fake ``/opt/ml`` tree.
"""

from __future__ import annotations

from pathlib import Path

# --- Environment variables set by SageMaker (or by the user on the Model) -----------------------
ENV_BASE_DIR = "SAGEMAKER_BASE_DIR"
ENV_PORT = "SAGEMAKER_BIND_TO_PORT"
ENV_WORKERS = "SAGEMAKER_MODEL_SERVER_WORKERS"
ENV_TIMEOUT = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
ENV_BATCH = "SAGEMAKER_BATCH"
ENV_MAX_PAYLOAD_MB = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
ENV_BATCH_STRATEGY = "SAGEMAKER_BATCH_STRATEGY"
ENV_MAX_CONCURRENT_TRANSFORMS = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"
# Standard CUDA variable; read to count GPUs without initializing CUDA in the master.
ENV_CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
# Set by our gunicorn post_fork hook so each worker can pick its GPU.
ENV_WORKER_ORDINAL = "SM_VISION_WORKER_ORDINAL"
# Ours: how the network runs (serve.runtimes) and how requests are batched (serve.batcher).
ENV_RUNTIME = "SM_VISION_RUNTIME"
ENV_PRECISION = "SM_VISION_PRECISION"
ENV_THREADS = "SM_VISION_THREADS"
ENV_MAX_BATCH = "SM_VISION_MAX_BATCH"
ENV_MAX_BATCH_WAIT_MS = "SM_VISION_MAX_BATCH_WAIT_MS"
RUNTIMES = ("auto", "openvino", "torch")  # the first is the default
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "exact")

# --- Defaults -------------------------------------------------------------------------------
DEFAULT_BASE_DIR = "/opt/ml"
DEFAULT_PORT = 8080
DEFAULT_TIMEOUT_S = 60
DEFAULT_MAX_PAYLOAD_MB = 6  # the real-time InvokeEndpoint limit
BATCH_STRATEGIES = ("MULTI_RECORD", "SINGLE_RECORD")
# /proc entry the NVIDIA driver fills with one directory per GPU.
NVIDIA_PROC_GPUS = "/proc/driver/nvidia/gpus"


def model_dir(base_dir: Path) -> Path:
    """Where SageMaker unpacks ``model.tar.gz``."""
    return base_dir / "model"


# --- Routes ---------------------------------------------------------------------------------
ROUTE_PING = "/ping"
ROUTE_INVOCATIONS = "/invocations"
ROUTE_EXECUTION_PARAMETERS = "/execution-parameters"

# --- Headers --------------------------------------------------------------------------------
HEADER_CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"

# --- Content types --------------------------------------------------------------------------
CT_JPEG = "image/jpeg"
CT_PNG = "image/png"
CT_X_IMAGE = "application/x-image"
CT_NPY = "application/x-npy"
CT_JSON = "application/json"
CT_JSONLINES = "application/jsonlines"

# Response selection: a missing Accept, */* and application/* all mean JSON.
DEFAULT_ACCEPT = CT_JSON
ACCEPT_WILDCARDS = ("*/*", "application/*")

# Verbose responses: ``Accept: application/json; verbose=true`` or the custom attribute
# ``verbose=true``; ``top_k=N`` (either place) sets how many classes the verbose answer ranks.
PARAM_VERBOSE = "verbose"
PARAM_TOP_K = "top_k"
DEFAULT_TOP_K = 5
