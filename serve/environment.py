"""A read-only snapshot of the serving environment.

Built once from ``os.environ`` (or any mapping, in tests) so that the gunicorn config, the app
and ``/execution-parameters`` all read the same validated values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from serve import contract, hardware

# Threads per gunicorn worker. One runs the model at a time (serve.model); the others decode
# requests and queue for the model, and one is always left free for /ping (serve.admission).
# Waiting threads cost little, and each one is a request accepted instead of refused with 503.
THREADS_PER_WORKER = 32
# CPU workers: one per core, each running the network on one thread (cpus // workers when capped):
# on 2 cores, 2 workers x 1 thread answered 195 requests/s at concurrency 8 where 1 worker x 2
# threads answered 170 (ResNet-18, bench/results/serve_means.md). Past a few workers more copies
# of the model only cost memory.
MAX_CPU_WORKERS = 8

# Dynamic batching (serve.batcher): at most this many images run together; the inference
# thread waits this long for more (0: it batches only what is already waiting). Measured:
# +15 % requests/s for ResNet-50 at concurrency 8, nothing measurable for ResNet-18; a 2 ms
# wait only added latency (bench/results/serve_means*.md).
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_BATCH_WAIT_MS = 0.0

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot use."""


@dataclass(frozen=True)
class ServingEnv:
    base_dir: Path
    port: int
    workers: int
    threads: int
    timeout_s: int
    max_payload_mb: int
    batch: bool
    batch_strategy: str
    max_concurrent_transforms: int
    gpus: int
    cpus: int
    runtime: str = "auto"
    precision: str = "auto"
    threads_per_worker: int | None = None  # intra-op threads; None: cpus // workers
    max_batch: int = 8
    max_batch_wait_ms: float = 0.0

    @property
    def model_dir(self) -> Path:
        return contract.model_dir(self.base_dir)

    @property
    def max_payload_bytes(self) -> int:
        return self.max_payload_mb * 1024 * 1024

    @property
    def torch_threads(self) -> int:
        """Intra-op threads per CPU worker, so workers do not oversubscribe the cores."""
        return self.threads_per_worker or max(1, self.cpus // self.workers)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, gpus: int | None = None, cpus: int | None = None
    ) -> ServingEnv:
        gpus = hardware.gpu_count(environ) if gpus is None else gpus
        cpus = hardware.cpu_count() if cpus is None else cpus
        default_workers = gpus if gpus > 0 else max(1, min(cpus, MAX_CPU_WORKERS))
        workers = _positive_int(environ, contract.ENV_WORKERS, default_workers)
        batch = _bool(environ, contract.ENV_BATCH)
        strategy = environ.get(contract.ENV_BATCH_STRATEGY, "").strip().upper()
        if not strategy:
            # Batch transform sends many jsonlines records per request when allowed to.
            strategy = "MULTI_RECORD" if batch else "SINGLE_RECORD"
        if strategy not in contract.BATCH_STRATEGIES:
            raise ConfigError(
                f"{contract.ENV_BATCH_STRATEGY}={strategy!r}; use one of "
                f"{', '.join(contract.BATCH_STRATEGIES)}"
            )
        return cls(
            base_dir=Path(environ.get(contract.ENV_BASE_DIR) or contract.DEFAULT_BASE_DIR),
            port=_positive_int(environ, contract.ENV_PORT, contract.DEFAULT_PORT),
            workers=workers,
            threads=THREADS_PER_WORKER,
            timeout_s=_positive_int(environ, contract.ENV_TIMEOUT, contract.DEFAULT_TIMEOUT_S),
            max_payload_mb=_positive_int(
                environ, contract.ENV_MAX_PAYLOAD_MB, contract.DEFAULT_MAX_PAYLOAD_MB
            ),
            batch=batch,
            batch_strategy=strategy,
            # Each worker runs one inference at a time; more concurrent requests only queue.
            max_concurrent_transforms=_positive_int(
                environ, contract.ENV_MAX_CONCURRENT_TRANSFORMS, workers
            ),
            gpus=gpus,
            cpus=cpus,
            runtime=_choice(environ, contract.ENV_RUNTIME, contract.RUNTIMES),
            precision=_choice(environ, contract.ENV_PRECISION, contract.PRECISIONS),
            threads_per_worker=_positive_int(environ, contract.ENV_THREADS, 0) or None,
            max_batch=_positive_int(environ, contract.ENV_MAX_BATCH, DEFAULT_MAX_BATCH),
            max_batch_wait_ms=_non_negative_float(environ, contract.ENV_MAX_BATCH_WAIT_MS,
                                                  DEFAULT_MAX_BATCH_WAIT_MS),
        )


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{name}={raw!r}; set it to a positive integer or unset it")
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r}; use one of {', '.join(choices)} or unset it")
    return raw


def _non_negative_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10_000:
        raise ConfigError(f"{name}={raw!r}; set it to a number of milliseconds >= 0 or unset it")
    return value


def _bool(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r}; set it to true or false")
