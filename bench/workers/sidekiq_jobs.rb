# Jobs for real Sidekiq 6.4.1 (Debian's ruby-sidekiq), required by the harness
# with `sidekiq -r`. Same class names and behaviour as gk_node.py.
require "sidekiq"
require "json"

# ruby-redis 4.8 warns on every BRPOP otherwise (see the lab notes).
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

REDIS_URL = ENV.fetch("BENCH_REDIS_URL")
Sidekiq.configure_server { |c| c.redis = { url: REDIS_URL } }
Sidekiq.configure_client { |c| c.redis = { url: REDIS_URL } }
# "Logging off": drop the two INFO lines Sidekiq writes per job.
Sidekiq.logger.level = Logger::WARN if ENV["BENCH_LOG"] == "off"

class NoopJob
  include Sidekiq::Worker
  def perform(*args); end
end

class IncrJob
  include Sidekiq::Worker
  def perform(*args)
    Sidekiq.redis { |r| r.incr("bench:done") }
  end
end

class SleepJob
  include Sidekiq::Worker
  def perform(*args)
    sleep 0.001
  end
end

class DeltaJob
  include Sidekiq::Worker
  def perform(t0, *rest)
    started = Time.now.to_f
    Sidekiq.redis { |r| r.rpush("bench:lat", (started - t0).to_s) }
  end
end
