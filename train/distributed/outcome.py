"""How a worker process ended, passed to its host's agent through a small JSON file.

The agent writes the host's ``output/success`` or ``output/failure`` from its workers'
outcomes; a worker never touches ``output/`` itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from train.errors import TrainingInterrupted, UserError

OUTCOME_DIR_ENV = "SM_VISION_OUTCOME_DIR"
AGENT_PID_ENV = "SM_VISION_AGENT_PID"
EXIT_CODES = {"ClientError": 1, "AlgorithmError": 2, "Interrupted": 143}


@dataclass(frozen=True)
class Outcome:
    rank: int
    kind: str | None  # None: success; else ClientError, AlgorithmError or Interrupted
    message: str = ""
    peer: bool = False  # the failure is a peer's, seen from here

    @property
    def exit_code(self) -> int:
        return 0 if self.kind is None else EXIT_CODES[self.kind]

    def reason(self) -> str:
        """The first lines of output/failure."""
        return f"{self.kind}: {self.message}"


def classify(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return "ClientError"
    if isinstance(exc, TrainingInterrupted):
        return "Interrupted"
    return "AlgorithmError"


def path(directory: Path, rank: int) -> Path:
    return directory / f"rank-{rank}.json"


def write(directory: Path, outcome: Outcome) -> None:
    tmp = path(directory, outcome.rank).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(outcome)))
    os.replace(tmp, path(directory, outcome.rank))


def read(directory: Path, rank: int) -> Outcome | None:
    file = path(directory, rank)
    if not file.is_file():
        return None
    return Outcome(**json.loads(file.read_text()))
