"""What a node tells observers about each job it finishes (metrics, exporters).

An observer is any object with some of these methods; each is optional:

- ``job_finished(event)``: on the thread that ran the job (or the event loop's
  thread for async jobs), after the job was acknowledged or settled. Must be
  cheap and must not block: buffer, then write in ``beat``.
- ``beat(client)``: once per heartbeat, on the heartbeat thread, with the
  node's Redis client: flush what was buffered.
- ``close(client)``: once when the node stops, after the last job: final flush.

An observer that raises is logged and never affects the job or the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gokogeri.job import Job

# done: ran and acknowledged; retry/dead/drop: failed, settled by Sidekiq's rules
# (or a retry_in hook); invalid: a payload that is not a job, sent to the dead set.
Status = Literal["done", "retry", "dead", "drop", "invalid"]


# Not frozen: a frozen dataclass costs ~0.7 us more to build, once per job.
@dataclass(slots=True)
class JobEvent:
    job: Job | None  # None for an invalid payload
    queue: str
    # The name Sidekiq 7+ metrics key on: ``wrapped || class`` ("" if invalid).
    class_name: str
    status: Status
    seconds: float  # time spent running the job (middleware included); 0 if invalid
    exc: BaseException | None = None  # the failure, for retry/dead/drop
