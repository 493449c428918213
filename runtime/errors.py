"""Typed runtime errors: data that cannot be loaded, devices that are not there, children
that fail to train. All derive from NasforgeError, so the CLI shows them as one line and
exit status 2, and a search loop can record them instead of crashing.
"""

from __future__ import annotations

from nasforge.grammar.errors import NasforgeError


class DataError(NasforgeError):
    """A dataset is unknown, missing or malformed; the message says how to provide it."""


class DeviceError(NasforgeError):
    """A device was asked for that this machine does not have."""


class TrainingFailed(NasforgeError):
    """A child could not be trained; `reason` is a short code a caller can record.

    Reasons: ``nan_loss`` (the loss became NaN or infinite), ``out_of_memory``,
    ``shape`` (a shape or size error inside the model), ``runtime`` (any other error
    raised by the model or the training step), ``incompatible_data`` (the architecture
    does not fit the dataset: input shape, classes or family), ``too_large`` (the model
    needs more memory than the device has free: checked before it is built),
    ``diverged`` (training ended with an infinite validation perplexity, or an image
    model no more accurate than always answering the most common class, with a loss
    over twice a uniform guess's).
    """

    REASONS = (
        "nan_loss",
        "out_of_memory",
        "shape",
        "runtime",
        "incompatible_data",
        "too_large",
        "diverged",
    )

    def __init__(self, reason: str, message: str, *, epoch: int | None = None) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown TrainingFailed reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.epoch = epoch

    def __str__(self) -> str:
        where = f" in epoch {self.epoch}" if self.epoch is not None else ""
        return f"training failed ({self.reason}){where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        """What a caller records about the failure."""
        return {"reason": self.reason, "message": self.message, "epoch": self.epoch}


class IncompatibleData(TrainingFailed):
    """The architecture does not fit the dataset (raised before any training)."""

    def __init__(self, message: str) -> None:
        super().__init__("incompatible_data", message)

    def __str__(self) -> str:
        return self.message


class TooLarge(TrainingFailed):
    """The model needs more memory than the device has free (found before building it)."""

    def __init__(self, message: str) -> None:
        super().__init__("too_large", message)

    def __str__(self) -> str:
        return self.message
