# Sidekiq's own API (Sidekiq::Stats, Queue, ScheduledSet/RetrySet/DeadSet, ProcessSet,
# WorkSet) reading and acting on a Redis, so tests can check gokogeri.api against it both ways.
# Self-contained (needs only the sidekiq gem and REDIS_URL) so the interop suite can run the
# same text with `ruby -e` inside the Sidekiq 7.3.2 / 8.1.7 containers.
#
# Usage: ruby api_check.rb COMMAND [ARG ...]; prints one JSON document.
#   stats | list SET | queue NAME | processes | workers
#   retry|add_to_queue|kill|delete SET JID | retry_all|kill_all|clear SET
#   clear_queue NAME | delete_queue_job NAME JID | quiet|stop IDENTITY
#   seed SET COUNT CLASS QUEUE (failed-job entries as Sidekiq's JobRetry writes them; jids out)
#   push QUEUE CLASS COUNT (Client.push; jids out)
# SET is scheduled, retry or dead.
OUT = STDOUT.dup
STDOUT.reopen(STDERR) # Sidekiq 7/8 log to stdout even in client-only scripts.
require "sidekiq"
require "sidekiq/api"
require "json"
require "securerandom"

Redis.silence_deprecations = true if defined?(::Redis) && Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }

module ApiCheck
  module_function

  def set(name)
    case name
    when "scheduled" then Sidekiq::ScheduledSet.new
    when "retry" then Sidekiq::RetrySet.new
    when "dead" then Sidekiq::DeadSet.new
    else raise ArgumentError, "unknown set #{name}"
    end
  end

  def entry(e)
    { "jid" => e.jid, "class" => e.klass, "queue" => e.queue, "score" => e.score,
      "retry_count" => e["retry_count"], "error_class" => e["error_class"], "value" => e.value }
  end

  def find(set_name, jid)
    found = set(set_name).find_job(jid)
    raise ArgumentError, "#{jid} not in #{set_name}" unless found
    found
  end

  def run(cmd, args)
    case cmd
    when "stats"
      s = Sidekiq::Stats.new
      h = Sidekiq::Stats::History.new(2)
      { "processed" => s.processed, "failed" => s.failed, "scheduled_size" => s.scheduled_size,
        "retry_size" => s.retry_size, "dead_size" => s.dead_size, "enqueued" => s.enqueued,
        "processes_size" => s.processes_size, "workers_size" => s.workers_size,
        "default_queue_latency" => s.default_queue_latency, "queues" => s.queues,
        "history" => { "processed" => h.processed, "failed" => h.failed } }
    when "seed"
      js = set(args[0])
      now = Time.now.to_f
      Array.new(Integer(args[1])) do |i|
        jid = SecureRandom.hex(12)
        job = { "class" => args[2], "args" => [i, "x"], "retry" => true, "queue" => args[3],
                "jid" => jid, "created_at" => now - 100, "enqueued_at" => now - 90,
                "error_message" => "boom #{i}", "error_class" => "BoomError",
                "failed_at" => now - 80, "retry_count" => 2, "retried_at" => now - 10 }
        js.schedule(args[0] == "dead" ? now - i : now + 3600 + i, job)
        jid
      end
    when "push"
      Array.new(Integer(args[2])) { |i| Sidekiq::Client.push("class" => args[1], "queue" => args[0], "args" => [i]) }
    when "list"
      set(args[0]).map { |e| entry(e) }
    when "queue"
      q = Sidekiq::Queue.new(args[0])
      { "size" => q.size, "latency" => q.latency,
        "jobs" => q.map { |j| { "jid" => j.jid, "class" => j.klass, "retry_count" => j["retry_count"],
                                "enqueued_at" => j["enqueued_at"], "value" => j.value } } }
    when "retry" then find(args[0], args[1]).retry; true
    when "add_to_queue" then find(args[0], args[1]).add_to_queue; true
    when "kill" then find(args[0], args[1]).kill; true
    when "delete" then find(args[0], args[1]).delete; true
    when "retry_all" then set(args[0]).retry_all; true
    when "kill_all" then set(args[0]).kill_all; true
    when "clear" then set(args[0]).clear; true
    when "clear_queue" then Sidekiq::Queue.new(args[0]).clear; true
    when "delete_queue_job" then Sidekiq::Queue.new(args[0]).find_job(args[1]).delete
    when "processes"
      Sidekiq::ProcessSet.new.map do |p|
        concurrency = p["concurrency"]
        concurrency = p.concurrency if concurrency.nil? && p.respond_to?(:concurrency)
        { "identity" => p.identity, "quiet" => p["quiet"], "busy" => p["busy"],
          "concurrency" => concurrency, "queues" => p["queues"], "version" => p["version"] }
      end
    when "quiet", "stop"
      p = Sidekiq::ProcessSet.new.find { |x| x.identity == args[0] }
      raise ArgumentError, "no process #{args[0]}" unless p
      cmd == "quiet" ? p.quiet! : p.stop!
      true
    when "workers"
      ws = defined?(Sidekiq::WorkSet) ? Sidekiq::WorkSet.new : Sidekiq::Workers.new
      ws.map do |pid, tid, work|
        payload = work.is_a?(Hash) ? work["payload"] : work.payload
        payload = JSON.parse(payload) if payload.is_a?(String)
        queue = work.is_a?(Hash) ? work["queue"] : work.queue
        { "process" => pid, "thread" => tid, "queue" => queue, "jid" => payload["jid"],
          "class" => payload["class"] }
      end
    else
      raise ArgumentError, "unknown command #{cmd}"
    end
  end
end

OUT.write(JSON.generate({ "result" => ApiCheck.run(ARGV[0], ARGV[1..]) }))
