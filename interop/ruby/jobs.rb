# Ruby side of the gokogeri interop suite: the jobs a real Sidekiq runs for the tests.
#
# One file for Sidekiq 6.4.1, 7.3.2 and 8.1.7. It is mounted read-only into the containers at
# /opt/interop (or required from interop/ruby by the host fallback), so editing it needs no
# image rebuild. Loaded by `sidekiq -r`, by config.ru (Web UI) and by the CLI scripts.
require "json"
require "sidekiq"

# Sidekiq 6.4.1 with redis-rb 4.8 logs a deprecation warning every 2 s per thread otherwise.
Redis.silence_deprecations = true if defined?(::Redis) && ::Redis.respond_to?(:silence_deprecations=)

module Interop
  REDIS_URL = ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")
  # Tests read what ran from this list; one JSON record per executed job.
  DONE_KEY = "interop:done"
  # Seconds between polls of the schedule/retry sets. Sidekiq's default (5 s average, plus a
  # 10 s initial wait) would make every scheduled-job test slow; setting it also skips the wait.
  POLL_INTERVAL = Float(ENV.fetch("INTEROP_POLL_INTERVAL", "1"))

  # Sidekiq 7 renamed Worker to Job; 6.4 has only Worker.
  JOB_MODULE = defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker

  # The error FailJob raises by default, so tests can assert an error_class no library defines.
  class InteropError < StandardError; end

  # Error classes FailJob may raise by name (a fixed list: a job argument must not name any constant).
  ERRORS = {
    "Interop::InteropError" => InteropError,
    "ArgumentError" => ArgumentError,
    "RuntimeError" => RuntimeError,
    "KeyError" => KeyError,
  }.freeze

  # Keeps the job hash as Sidekiq parsed it from Redis, so RecordJob can report every field
  # (including ones Sidekiq itself does not know). Thread-local: one per processor thread.
  class CapturePayload
    def call(_job_instance, job_hash, _queue)
      Thread.current[:interop_payload] = job_hash
      yield
    ensure
      Thread.current[:interop_payload] = nil
    end
  end

  def self.record(job, extra = {})
    payload = Thread.current[:interop_payload] || {}
    entry = {
      "class" => job.class.name,
      "jid" => job.jid,
      "args" => payload["args"],
      "queue" => payload["queue"],
      "payload" => payload,
      "sidekiq" => Sidekiq::VERSION,
      "at" => Time.now.to_f,
    }.merge(extra)
    Sidekiq.redis { |r| r.rpush(DONE_KEY, JSON.generate(entry)) }
  end
end

Sidekiq.configure_client do |config|
  config.redis = { url: Interop::REDIS_URL }
end

Sidekiq.configure_server do |config|
  config.redis = { url: Interop::REDIS_URL }
  config.server_middleware { |chain| chain.add Interop::CapturePayload }
  if config.respond_to?(:[]=)
    config[:poll_interval_average] = Interop::POLL_INTERVAL # 7.x, 8.x: Sidekiq::Config
  else
    Sidekiq.options[:poll_interval_average] = Interop::POLL_INTERVAL # 6.x: a plain hash
  end
end

# Records its exact arguments and the payload it was given.
class RecordJob
  include Interop::JOB_MODULE

  def perform(*_args)
    Interop.record(self)
  end
end

# Raises FailJob(message, error_class = "Interop::InteropError").
class FailJob
  include Interop::JOB_MODULE

  def perform(message, error_class = "Interop::InteropError", *_rest)
    raise Interop::ERRORS.fetch(error_class, Interop::InteropError), message
  end
end

# Sleeps, then records: keeps a processor thread busy for heartbeat/Web UI/shutdown tests.
class SleepJob
  include Interop::JOB_MODULE

  def perform(seconds, *_rest)
    sleep Float(seconds)
    Interop.record(self)
  end
end

# Does nothing (throughput and counters).
class NoopJob
  include Interop::JOB_MODULE

  def perform(*_args); end
end

# EnqueuePythonJob(class_name, queue, args, extra_fields = {}): Ruby enqueues a job for Python
# (any class name, any queue) with Sidekiq's own client, then records the jid it pushed.
class EnqueuePythonJob
  include Interop::JOB_MODULE

  def perform(class_name, queue, args, extra = {})
    item = extra.merge("class" => class_name, "queue" => queue, "args" => args)
    pushed = Sidekiq::Client.push(item)
    Interop.record(self, "pushed_jid" => pushed)
  end
end

# Fails in Ruby and hands its retries to Python: Sidekiq rewrites the job's queue to
# retry_queue when it schedules the retry, so the retry lands in queue "python".
class HandOffJob
  include Interop::JOB_MODULE
  sidekiq_options retry_queue: "python", backtrace: true

  def perform(message = "failed in ruby", *_rest)
    raise Interop::InteropError, message
  end
end

module Interop
  # The classes push.rb may enqueue through their own perform_async / perform_in (which
  # apply the class's sidekiq_options, as Client.push with a class name does not).
  JOBS = {
    "RecordJob" => RecordJob, "FailJob" => FailJob, "SleepJob" => SleepJob,
    "NoopJob" => NoopJob, "HandOffJob" => HandOffJob,
  }.freeze
end

# ActiveJob interop (activejob.rb: AjSampleJob, AjRecordJob, AjFailJob) where the image has
# Debian's ruby-activejob; without it the rest of the suite runs as before.
begin
  require "active_job"
rescue LoadError
  nil
else
  require_relative "activejob"
end
