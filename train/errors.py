"""Two kinds of failure: the user's (bad hyperparameters, data, config) and ours (bugs)."""


class UserError(Exception):
    """A problem the user can fix; its message names the problem and the fix.

    The message becomes the first line of ``output/failure`` (SageMaker's FailureReason).
    """


class TrainingInterrupted(Exception):
    """SIGTERM arrived (spot interruption, StopTrainingJob); a checkpoint was saved."""
