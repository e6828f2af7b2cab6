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
