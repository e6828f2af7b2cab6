# Times Sidekiq::Client.push / push_bulk (the counterpart of gk_client.py).
# Usage: ruby sidekiq_client.rb single|bulk N   (BENCH_REDIS_URL in the env)
# Prints one JSON line: {"seconds": ..., "jobs": ...}.
require "sidekiq"
require "json"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("BENCH_REDIS_URL") } }

BULK = 1000 # jobs per push_bulk call, as in bin/sidekiqload
mode = ARGV.fetch(0)
n = Integer(ARGV.fetch(1))

# Warm the connection and code paths before timing.
Sidekiq::Client.push("class" => "NoopJob", "args" => [])
Sidekiq.redis { |r| r.del("queue:default") }

# "bulkx": push_bulk given args arrays [i, "x"] built before the clock starts
# (the caller already has them); gokogeri builds its Jobs inside the loop.
prebuilt = mode == "bulkx" ? (0...n).step(BULK).map { |b| (b...[n, b + BULK].min).map { |i| [i, "x"] } } : nil

start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
if mode == "bulkx"
  prebuilt.each { |args| Sidekiq::Client.push_bulk("class" => "NoopJob", "args" => args) }
elsif mode == "single"
  n.times { |i| Sidekiq::Client.push("class" => "NoopJob", "args" => ["string", i, { "mike" => "bob" }]) }
else
  (0...n).step(BULK) do |base|
    args = (base...[n, base + BULK].min).map { |i| ["string", i, { "mike" => "bob" }] }
    Sidekiq::Client.push_bulk("class" => "NoopJob", "args" => args)
  end
end
seconds = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
queued = Sidekiq.redis { |r| r.llen("queue:default") }
puts JSON.generate({ "seconds" => seconds, "jobs" => n, "queued" => queued })
