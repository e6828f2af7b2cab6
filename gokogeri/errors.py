"""The exceptions gokogeri raises for bad input; one type per kind of mistake."""

from __future__ import annotations


class GokogeriError(Exception):
    """Base class of every error gokogeri raises on purpose."""


class InvalidPayloadError(GokogeriError, ValueError):
    """A job payload read from Redis (or handed to Job.decode) is not a Sidekiq job.

    The message names the field and what is wrong with it, so a dead-set entry
    carrying it is enough to find the producer's bug.
    """


class InvalidArgumentError(GokogeriError, TypeError):
    """A job argument is not JSON-native, so Ruby could not read it back unchanged."""


class InvalidQueueNameError(GokogeriError, ValueError):
    """A queue name that Sidekiq's Web UI would refuse to show."""


class UnknownJobClassError(GokogeriError, LookupError):
    """A Router received a job whose class has no registered worker.

    Sidekiq raises NameError in the same spot; like it, this is an ordinary job
    failure that follows the retry rules, never a crash of the node.
    """


class NodeCrashedError(GokogeriError, RuntimeError):
    """A node stopped because of a fault in gokogeri itself (never a job's).

    Every job it held was pushed back first; ``__cause__`` is the fault.
    """


class EnqueueError(GokogeriError):
    """Redis refused or failed a push; ``__cause__`` is redis-py's exception.

    ``pushed`` lists the jids that did reach Redis before the failure (bulk
    enqueues are atomic per round trip, so these are whole batches): retry
    only the rest, or duplicates follow.
    """

    def __init__(self, message: str, pushed: list[str] | None = None) -> None:
        super().__init__(message)
        self.pushed: list[str] = list(pushed or [])


class RedisUnavailableError(EnqueueError):
    """The push could not reach Redis (connection refused, reset, timed out).
    Nothing of the failed round trip is known to have been applied."""
