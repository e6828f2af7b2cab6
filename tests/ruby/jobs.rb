# Job classes real Ruby Sidekiq runs in gokogeri's tests. Loaded by `sidekiq -r`
# and by `ruby -r` for client/API scripts. Works on Sidekiq 6.4.1 and later.
require "sidekiq"
require "sidekiq/api"
require "json"

# redis-rb 4.8 warns on every BRPOP Sidekiq 6.4.1 makes; the warning is noise here.
Redis.silence_deprecations = true if defined?(::Redis) && Redis.respond_to?(:silence_deprecations=)

REDIS_URL = ENV.fetch("REDIS_URL")
Sidekiq.configure_server { |c| c.redis = { url: REDIS_URL } }
Sidekiq.configure_client { |c| c.redis = { url: REDIS_URL } }
# Tests cannot wait out the poller's default 10-15 s start and 5 s interval.
if ENV["SIDEKIQ_POLL_INTERVAL"] && Sidekiq.respond_to?(:options)
  Sidekiq.options[:poll_interval_average] = Float(ENV["SIDEKIQ_POLL_INTERVAL"])
end

GokogeriTestJob = defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker

# Records what it received, so tests can compare args exactly.
class RecordJob
  include GokogeriTestJob

  def perform(*args)
    Sidekiq.redis do |r|
      r.rpush("test:done", JSON.generate({ "class" => "RecordJob", "jid" => jid, "args" => args, "at" => Time.now.to_f }))
    end
  end
end

class BoomError < StandardError; end

class FailJob
  include GokogeriTestJob

  def perform(message = "boom")
    raise BoomError, message
  end
end

# Fails in Ruby; its retries are meant for Python (retry_queue), so a Python
# node picks the retry up and keeps the count going.
class HandOffJob
  include GokogeriTestJob
  sidekiq_options retry_queue: "python", backtrace: true

  def perform(*args)
    raise BoomError, "failed in ruby"
  end
end
