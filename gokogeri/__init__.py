"""gokogeri: background jobs for Python, wire-compatible with Ruby's Sidekiq."""

from gokogeri import redis
from gokogeri.aiowire import LoopLocalRedis
from gokogeri.api import Api
from gokogeri.conns import ThreadLocalRedis
from gokogeri.enqueuer import Enqueuer
from gokogeri.errors import (
    EnqueueError,
    GokogeriError,
    InvalidArgumentError,
    InvalidPayloadError,
    InvalidQueueNameError,
    NodeCrashedError,
    RedisUnavailableError,
    UnknownJobClassError,
)
from gokogeri.events import JobEvent
from gokogeri.job import Job, new_jid
from gokogeri.log import default_logger, nop_logger
from gokogeri.metrics import SidekiqMetrics
from gokogeri.middleware import Chain, ClientChain, ServerChain
from gokogeri.node import Node
from gokogeri.periodic import Periodic
from gokogeri.queues import OrderedQueueSet, QueueSet, RandomQueueSet
from gokogeri.swarm import Swarm
from gokogeri.worker import AsyncWorkerFunc, Context, Router, Worker, WorkerFunc

__version__ = "0.1.0"

__all__ = [
    "Api",
    "AsyncWorkerFunc",
    "Chain",
    "ClientChain",
    "Context",
    "EnqueueError",
    "Enqueuer",
    "GokogeriError",
    "InvalidArgumentError",
    "InvalidPayloadError",
    "InvalidQueueNameError",
    "Job",
    "JobEvent",
    "LoopLocalRedis",
    "Node",
    "NodeCrashedError",
    "OrderedQueueSet",
    "Periodic",
    "QueueSet",
    "RandomQueueSet",
    "RedisUnavailableError",
    "Router",
    "ServerChain",
    "SidekiqMetrics",
    "Swarm",
    "ThreadLocalRedis",
    "UnknownJobClassError",
    "Worker",
    "WorkerFunc",
    "__version__",
    "default_logger",
    "new_jid",
    "nop_logger",
    "redis",
]
