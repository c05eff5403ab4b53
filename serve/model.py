"""Load the artifact into the handler for its task, on the runtime this worker serves with.

Runs in each worker after fork (never in the gunicorn master), in the loader's thread.
Imports no torch unless the chosen runtime is torch.
"""

from __future__ import annotations

from pathlib import Path

from common.artifact import METADATA_FILE, ArtifactError, load_metadata
from common.export import ONNX_FILE
from serve import runtimes
from serve.batcher import Batcher
from serve.environment import ServingEnv
from serve.handlers import HANDLERS, Handler


def load(env: ServingEnv, ordinal: int = 0) -> Handler:
    meta = load_metadata(env.model_dir)
    handler_class = HANDLERS.get(meta.task)
    if handler_class is None:
        raise ArtifactError(f"the model in {env.model_dir} is a {meta.task} model, which this "
                            "server does not answer")
    runtime = runtimes.choose(meta, env.model_dir, runtime=env.runtime,
                              precision=env.precision, gpus=env.gpus, ordinal=ordinal,
                              threads=env.torch_threads)
    batcher = Batcher(runtime.run, env.max_batch, env.max_batch_wait_ms / 1000)
    handler = handler_class(meta, runtime, batcher)
    handler.warm_up()
    return handler


def not_ready_reason(env: ServingEnv) -> str | None:
    """Why the model directory cannot be loaded *yet* (None: load it now).

    The directory may be filled after the server starts (docker compose starts training and
    serving together; a volume mounted late): the server waits for ``metadata.json``, which
    training writes last, and, in an image without torch, for the exported graph.
    """
    model_dir: Path = env.model_dir
    metadata = model_dir / METADATA_FILE
    if not metadata.is_file():
        return (f"no model yet: no {METADATA_FILE} in {model_dir}; waiting for one (train a "
                "model into it, or mount a trained model there)")
    if env.gpus == 0 and not (model_dir / ONNX_FILE).is_file() \
            and not runtimes.torch_installed():
        try:
            exported = load_metadata(model_dir).exports
        except ArtifactError:
            return None  # the load reports what is wrong
        if "onnx" not in exported:
            return (f"no {ONNX_FILE} in {model_dir} yet: waiting for training to export it "
                    "(this image has no torch to serve the weights alone)")
    return None
