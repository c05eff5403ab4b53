"""The ``train`` command: what SageMaker runs as ``docker run <image> train``.

It owns the process-level contract: logging to stdout, SIGTERM, ``output/success`` or
``output/failure``, and the exit code (0 success, 1 user error, 2 internal error,
143 stopped by SIGTERM after saving a checkpoint).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback

from train import interrupt
from train.contract import FAILURE_REASON_CHARS, TrainingEnv, base_dir_from_environ
from train.data.links import check_input_links
from train.errors import TrainingInterrupted, UserError

log = logging.getLogger("train")

EXIT_USER_ERROR = 1
EXIT_INTERNAL_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGTERM


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train",
        description="SageMaker training entry point. Reads /opt/ml (or $SAGEMAKER_BASE_DIR): "
        "input/config/hyperparameters.json, inputdataconfig.json, resourceconfig.json and "
        "input/data/<channel>/; writes model/, checkpoints/ and output/success|failure.",
    )
    parser.add_argument("--list-hyperparameters", action="store_true",
                        help="print every hyperparameter with its default and exit")
    return parser


def setup_logging(who: str = "") -> None:
    """One line per record on stdout, flushed at once: CloudWatch reads it line by line.
    ``who`` names the process in a distributed job (``rank 3``)."""
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    prefix = f"{who} " if who else ""
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"[%(asctime)s %(levelname)s {prefix}%(name)s] %(message)s",
        force=True,
    )


def main(argv: list[str] | None = None) -> int:
    # First of all: a SIGTERM during the slow imports below must not kill the process
    # without a failure file and exit code 143.
    stop = interrupt.install()
    args = get_args_parser().parse_args(argv)
    if args.list_hyperparameters:
        from train.hyperparameters import describe

        for row in describe():
            aliases = f" (alias: {', '.join(row['aliases'])})" if row["aliases"] else ""
            print(f"{row['name']}{aliases} = {row['default']!r}  {row['rules'] or ''}  "
                  f"{row['doc']}")
        return 0
    setup_logging()
    code = run_job(stop)
    sys.exit(code)


def run_job(stop: interrupt.StopRequest | None = None) -> int:
    stop = stop or interrupt.install()
    # A bare env (no config read yet) so that a broken config file still gets a failure file.
    env = TrainingEnv(base_dir=base_dir_from_environ())
    try:
        # A resumed job runs in the same tree: the previous run's outcome is not this one's.
        env.clear_outcome()
        env = TrainingEnv.from_base_dir(env.base_dir)
        check_input_links(env)
        code = _train(env, stop)
        if code is not None:
            return code
    except UserError as exc:
        return _fail(env, f"ClientError: {exc}", EXIT_USER_ERROR)
    except TrainingInterrupted as exc:
        return _fail(env, f"Interrupted: {exc}", EXIT_INTERRUPTED)
    except Exception as exc:
        trace = traceback.format_exc()
        log.error(trace)
        return _fail(
            env,
            f"AlgorithmError: {type(exc).__name__}: {exc} (an internal error; please report it "
            f"with this message)\n\n{trace}",
            EXIT_INTERNAL_ERROR,
        )
    env.write_success()
    log.info("training finished")
    return 0


def _train(env: TrainingEnv, stop: interrupt.StopRequest) -> int | None:
    """Train in this process, or start this host's processes of a distributed job; an exit
    code when the outcome is already written (distributed), else None."""
    import torch

    from train import engine, tasks
    from train.distributed import agent, topology
    from train.distributed.runtime import single_process

    # The built-in segmentation algorithm's notebooks pass `algorithm`/`backbone` or a
    # `train_annotation` channel: the same image answers both.
    task = tasks.create(env)
    stop.check("while the training code was loading")
    plan = topology.plan(env, task.params.processes_per_host, torch.cuda.device_count())
    if plan.world == 1:
        engine.run(env, stop, task, single_process())
        return None
    topology.wait_for_master(plan)
    result = agent.run(plan, stop)
    if result.kind is not None:
        return _fail(env, result.reason(), result.exit_code)
    if plan.host_index != 0:
        log.info("this host's part is done; the first host, %s, wrote the model",
                 plan.master_addr)
    return None


def _fail(env: TrainingEnv, message: str, code: int) -> int:
    log.error("training failed: %s", message[:FAILURE_REASON_CHARS])
    env.write_failure(message)
    return code
