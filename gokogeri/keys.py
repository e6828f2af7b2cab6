"""Every Redis key gokogeri reads or writes, named in one place.

Sidekiq's own keys keep Sidekiq's exact spelling so Ruby processes and the Web UI
see the same data. Keys only gokogeri uses live under ``gokogeri:`` so they never
collide with anything Sidekiq (or Sidekiq Pro) writes.

A namespace (Sidekiq 6's redis-namespace) prefixes keys only: set members, hash
fields and list values are never prefixed, exactly as redis-namespace does.
"""

from __future__ import annotations


class Keys:
    __slots__ = (
        "dead",
        "periodic",
        "periodic_last",
        "prefix",
        "processes",
        "queues",
        "rescue_lock",
        "retry",
        "schedule",
        "schedule_channel",
        "stat_failed",
        "stat_processed",
        "working_registry",
    )

    def __init__(self, namespace: str = "") -> None:
        self.prefix = f"{namespace}:" if namespace else ""
        p = self.prefix
        # --- Sidekiq's keys ---
        self.queues = p + "queues"  # SET of queue names, for the Web UI only
        self.schedule = p + "schedule"  # ZSET, score = run-at epoch seconds
        self.retry = p + "retry"  # ZSET, score = retry-at epoch seconds
        self.dead = p + "dead"  # ZSET, score = time of death
        self.processes = p + "processes"  # SET of live process identities
        self.stat_processed = p + "stat:processed"
        self.stat_failed = p + "stat:failed"
        # --- gokogeri's own keys ---
        # HASH: working-list key -> JSON {"identity", "queue"}; lets live nodes
        # find the working lists of dead nodes without SCAN.
        self.working_registry = p + "gokogeri:working"
        # Only one node at a time rescues orphaned jobs.
        self.rescue_lock = p + "gokogeri:rescue-lock"
        # Our enqueuers PUBLISH here when they schedule a job, so a sleeping
        # scheduler wakes for it instead of finding it on its next poll.
        self.schedule_channel = p + "gokogeri:schedule-wakeup"
        # --- periodic jobs (gokogeri/periodic.py) ---
        # HASH: entry name -> JSON {kind, schedule, class, queue, seen, by}, what
        # `gokogeri cron` lists; and entry name -> JSON of its last enqueued tick.
        self.periodic = p + "gokogeri:periodic"
        self.periodic_last = p + "gokogeri:periodic:last"

    def queue(self, name: str) -> str:
        return f"{self.prefix}queue:{name}"

    def identity(self, identity: str) -> str:
        """The process hash: info, busy, beat, quiet, rss, rtt_us, concurrency."""
        return self.prefix + identity

    def work(self, identity: str) -> str:
        """In-progress jobs as Sidekiq 6.4.2 and later read them."""
        return f"{self.prefix}{identity}:work"

    def workers(self, identity: str) -> str:
        """In-progress jobs as Sidekiq 6.4.0 and 6.4.1 read them."""
        return f"{self.prefix}{identity}:workers"

    def signals(self, identity: str) -> str:
        """The Web UI LPUSHes TSTP (quiet) and TERM (stop) here."""
        return f"{self.prefix}{identity}-signals"

    def stat_daily(self, kind: str, day: str) -> str:
        """``kind`` is "processed" or "failed"; ``day`` is the UTC YYYY-MM-DD."""
        return f"{self.prefix}stat:{kind}:{day}"

    def working(self, identity: str, queue: str) -> str:
        """The crash-safe fetch's per-node, per-queue list of jobs in flight."""
        return f"{self.prefix}gokogeri:working:{identity}:{queue}"

    # --- metrics (Sidekiq 7/8 execution metrics, gokogeri/metrics.py) ---
    # Sidekiq 7/8 have no namespace; the prefix only matters if one is set anyway.

    def metrics_jobs(self, bucket: str) -> str:
        """HASH "Class|p"/"Class|f"/"Class|ms" -> count for one time bucket ("j|...")."""
        return f"{self.prefix}j|{bucket}"

    def metrics_histogram(self, klass: str, window: str, major: int) -> str:
        """BITFIELD of 26 u16 counters: "Class-DD-HH:M" (7.x), "h|Class-D-H:M" (8.x)."""
        if major >= 8:
            return f"{self.prefix}h|{klass}-{window}"
        return f"{self.prefix}{klass}-{window}"

    # --- periodic jobs (gokogeri/periodic.py) ---

    def periodic_tick(self, name: str, tick: float) -> str:
        """The lock of one tick of one periodic entry (SET NX EX): whoever sets it enqueues."""
        return f"{self.prefix}gokogeri:periodic:tick:{name}:{tick!r}"

    def started(self, identity: str) -> str:
        """HASH: processor thread id -> digest of the job it started last; rescue
        counts only these jobs toward the poison limit (prefetched ones never ran)."""
        return f"{self.prefix}gokogeri:started:{identity}"

    def rescued(self, jid: str) -> str:
        """How often a started job was rescued from a dead node (a poison-pill
        counter), by jid or, for a payload without one, by its digest."""
        return f"{self.prefix}gokogeri:rescued:{jid}"
