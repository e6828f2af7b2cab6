# Print, as JSON on stdout, what Sidekiq's own API sees in Redis, so tests can check that data
# written by Python reads correctly through the real Ruby code on every Sidekiq version.
#
# Usage: ruby api.rb [section ...]   sections: processes workers stats retries dead scheduled
#                                     queue:NAME (the jobs in one queue)
#                                     (default: all but queue:NAME)
OUT = STDOUT.dup
STDOUT.reopen(STDERR) # Sidekiq 7/8 log to stdout even in client-only scripts.
require_relative "jobs"
require "sidekiq/api"
require "base64"
require "zlib"

module InteropApi
  PROCESS_KEYS = %w[identity hostname pid tag labels queues concurrency busy beat quiet version
                    started_at rss rtt_us weights capsules embedded].freeze

  module_function

  # A value JSON can carry (Time -> float seconds; anything else exotic -> its string form).
  def plain(value)
    case value
    when Time then value.to_f
    when Hash then value.to_h { |k, v| [k.to_s, plain(v)] }
    when Array then value.map { |v| plain(v) }
    when String, Numeric, true, false, nil then value
    else value.to_s
    end
  end

  def processes
    Sidekiq::ProcessSet.new.map do |process|
      raw = process.instance_variable_get(:@attribs) || {}
      named = PROCESS_KEYS.to_h do |key|
        value = process[key]
        # 8.x exposes some attributes (concurrency) only through methods.
        value = process.public_send(key) if value.nil? && process.respond_to?(key)
        [key, plain(value)]
      end
      named.merge("stopping" => process.stopping?, "attributes" => plain(raw))
    end
  end

  # 6.x yields a Hash per running job; 7.2+ a Sidekiq::Work. Normalise both.
  def work_entry(process_id, thread_id, work)
    if work.is_a?(Hash)
      queue, run_at, payload = work["queue"], work["run_at"], work["payload"]
    else
      queue, run_at, payload = work.queue, work.run_at, work.payload
    end
    payload = JSON.parse(payload) if payload.is_a?(String)
    { "process" => process_id, "thread" => thread_id, "queue" => queue,
      "run_at" => plain(run_at), "payload" => plain(payload) }
  end

  def workers
    set = defined?(Sidekiq::WorkSet) ? Sidekiq::WorkSet.new : Sidekiq::Workers.new
    set.map { |process_id, thread_id, work| work_entry(process_id, thread_id, work) }
  end

  def stats
    s = Sidekiq::Stats.new
    { "processed" => s.processed, "failed" => s.failed, "retry_size" => s.retry_size,
      "dead_size" => s.dead_size, "scheduled_size" => s.scheduled_size, "enqueued" => s.enqueued,
      "processes_size" => s.processes_size, "workers_size" => s.workers_size, "queues" => s.queues,
      # The dashboard's history graph: the daily keys, today and yesterday (a run may span midnight).
      "history" => { "processed" => Sidekiq::Stats::History.new(2).processed.values.sum,
                     "failed" => Sidekiq::Stats::History.new(2).failed.values.sum } }
  end

  # The times the Web UI shows for a job, read the way this version's UI reads them:
  # JobRecord#created_at / #enqueued_at, and failed_at / retried_at through JobRecord (8.x)
  # or Time.at(job["failed_at"]) (6.x, 7.x _job_info.erb). Float epoch seconds.
  def times(record)
    out = { "created_at" => record.created_at, "enqueued_at" => record.enqueued_at }
    %w[failed_at retried_at].each do |key|
      out[key] = if record.respond_to?(key) then record.public_send(key)
                 elsif record[key] then Time.at(record[key])
                 end
    end
    out["at"] = record.at if record.respond_to?(:at)
    plain(out)
  end

  def queue(name)
    q = Sidekiq::Queue.new(name)
    latency = q.latency # from the oldest job's enqueued_at, as the dashboard shows it
    q.map do |record|
      { "jid" => record.jid, "class" => record.klass, "args" => record.args, "queue" => record.queue,
        "times" => times(record), "latency" => latency, "payload" => plain(record.item) }
    end
  end

  def sorted_entries(set)
    set.map do |entry|
      item = entry.item
      backtrace = begin
        entry.error_backtrace
      rescue StandardError => e
        "undecodable: #{e.class}: #{e.message}"
      end
      { "jid" => entry.jid, "class" => entry.klass, "display_class" => entry.display_class,
        "args" => entry.args, "queue" => entry.queue, "score" => entry.score, "at" => plain(entry.at),
        "error_class" => item["error_class"], "error_message" => item["error_message"],
        "retry_count" => item["retry_count"], "error_backtrace" => backtrace, "times" => times(entry),
        "payload" => plain(item) }
    end
  end

  SECTIONS = {
    "processes" => -> { processes },
    "workers" => -> { workers },
    "stats" => -> { stats },
    "retries" => -> { sorted_entries(Sidekiq::RetrySet.new) },
    "dead" => -> { sorted_entries(Sidekiq::DeadSet.new) },
    "scheduled" => -> { sorted_entries(Sidekiq::ScheduledSet.new) },
  }.freeze
end

wanted = ARGV.empty? ? InteropApi::SECTIONS.keys : ARGV
result = { "sidekiq" => Sidekiq::VERSION }
wanted.each do |name|
  result[name] = if name.start_with?("queue:")
                   InteropApi.queue(name.delete_prefix("queue:"))
                 else
                   InteropApi::SECTIONS.fetch(name).call
                 end
end
OUT.puts JSON.generate(result)
