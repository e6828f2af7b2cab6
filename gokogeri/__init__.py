"""gokogeri: background jobs for Python, wire-compatible with Ruby's Sidekiq."""

from gokogeri import redis
from gokogeri.enqueuer import Enqueuer
from gokogeri.errors import (
    GokogeriError,
    InvalidArgumentError,
    InvalidPayloadError,
    InvalidQueueNameError,
    UnknownJobClassError,
)
from gokogeri.job import Job, new_jid
from gokogeri.log import default_logger, nop_logger
from gokogeri.middleware import Chain, ClientChain, ServerChain
from gokogeri.node import Node
from gokogeri.queues import OrderedQueueSet, QueueSet, RandomQueueSet
from gokogeri.worker import Context, Router, Worker, WorkerFunc

__version__ = "0.1.0"

__all__ = [
    "Chain",
    "ClientChain",
    "Context",
    "Enqueuer",
    "GokogeriError",
    "InvalidArgumentError",
    "InvalidPayloadError",
    "InvalidQueueNameError",
    "Job",
    "Node",
    "OrderedQueueSet",
    "QueueSet",
    "RandomQueueSet",
    "Router",
    "ServerChain",
    "UnknownJobClassError",
    "Worker",
    "WorkerFunc",
    "__version__",
    "default_logger",
    "new_jid",
    "nop_logger",
    "redis",
]
