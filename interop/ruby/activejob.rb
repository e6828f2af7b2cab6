# A Rails-less ActiveJob app (require "active_job", queue_adapter :sidekiq) for gokogeri's
# ActiveJob interop: Ruby enqueues with perform_later for Python, and runs (inside Sidekiq) the
# ActiveJob jobs Python enqueued, asserting that `perform` received exactly the sample values.
#
# One file for Rails 6.1 (bookworm, Sidekiq 6.4.1) and the trixie/sid Rails of Sidekiq 7.3.2 and
# 8.1.7. Loaded by interop/ruby/jobs.rb when ActiveJob is installed (so the interop Sidekiq
# runs these jobs), and by tests/ruby/activejob/app.rb on the host. As a script:
#
#   ruby activejob.rb info                                  Rails/Sidekiq versions, JSON
#   ruby activejob.rb enqueue JOB QUEUE [WAIT] [SAMPLE]     JOB.set(queue:, wait:).perform_later
#                                                           with the sample (or [SAMPLE] as JSON
#                                                           args); prints job_id, provider_job_id
#
# Every job records what it got to the Redis list aj:done (one JSON object per perform):
#   {"job": class, "job_id", "jid", "executions", "ok": true|false, "problems": [...],
#    "received": [inspect of each argument], "kwargs": {name: inspect}, "rails": version}
require "json"
require "bigdecimal"
require "date"
require "logger"
require "sidekiq"
require "active_job"
require "active_support"
require "active_support/core_ext"

module AjInterop
  REDIS_URL = ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")
  DONE_KEY = "aj:done"
  RAILS = ActiveJob.version.to_s
  RAILS_GE_70 = ActiveJob.version >= Gem::Version.new("7.0")
  RAILS_GE_71 = ActiveJob.version >= Gem::Version.new("7.1")

  # A GlobalID-locatable model without ActiveRecord: GlobalID::Locator calls User.find(id).
  class User
    include GlobalID::Identification
    attr_reader :id

    def initialize(id)
      @id = id.to_s
    end

    def self.find(id)
      new(id)
    end

    def ==(other)
      other.is_a?(User) && other.id == id
    end
  end

  # The sample every direction uses: positional arguments and keyword arguments, one value per
  # ActiveJob serializer (and the hash flavours). gokogeri's tests hold the same values in Python
  # (tests/test_activejob.py: SAMPLE_ARGS / SAMPLE_KWARGS); the two lists must stay in step.
  def self.sample
    paris = Time.find_zone!("Europe/Paris")
    args = [
      42,
      "text",
      1.5,
      nil,
      true,
      :vip,                                                    # SymbolSerializer
      Time.utc(2026, 1, 2, 3, 4, 5, 123_456),                  # TimeSerializer (UTC)
      Time.new(2026, 1, 2, 3, 4, 5, "+05:30"),                 # TimeSerializer (offset)
      DateTime.new(2026, 1, 2, 3, 4, 5, "+01:00"),             # DateTimeSerializer
      Date.new(2026, 2, 28),                                   # DateSerializer
      paris.local(2026, 6, 1, 14, 30, 0),                      # TimeWithZoneSerializer
      2.days + 3.hours,                                        # DurationSerializer
      90.seconds,
      BigDecimal("123.456"),                                   # BigDecimalSerializer (7.1+)
      User,                                                    # ModuleSerializer
      { a: 1, "b" => [1, :c] },                                # _aj_symbol_keys
      { "x" => 1, "y" => { "z" => 2 } }.with_indifferent_access, # _aj_hash_with_indifferent_access
      User.new(42),                                            # _aj_globalid
      [1, [Date.new(2026, 3, 4), { "k" => :s }]],
    ]
    args.push(1..10, 1.5...2.5, Date.new(2026, 1, 1)..Date.new(2026, 12, 31)) if RAILS_GE_70 # RangeSerializer
    kwargs = { locale: "fr", at: Time.utc(2026, 1, 2, 3, 4, 5), sym: :vip, user: User.new(7) }
    [args, kwargs]
  end

  # What `perform` must receive for the sample. Rails 6.1 sends a BigDecimal as a plain JSON
  # string (it has no BigDecimalSerializer), so its own perform gets a String back.
  def self.expected
    args, kwargs = sample
    # Before 7.1 a TimeWithZone comes back in the app's Time.zone (its own zone is not sent).
    args = args.map do |a|
      if a.is_a?(BigDecimal) && !RAILS_GE_71 then a.to_s
      elsif a.is_a?(ActiveSupport::TimeWithZone) && !RAILS_GE_71 then a.in_time_zone(Time.zone)
      else a
      end
    end
    [args, kwargs]
  end

  # Exact comparison: == plus the class (Ruby's Date == DateTime and 1 == 1.0 are too lenient),
  # the UTC offset of times and the zone of a TimeWithZone, hash classes, duration parts.
  def self.problems(got, want, where, out = [])
    unless got.class == want.class
      out << "#{where}: #{got.class} #{got.inspect} (want #{want.class} #{want.inspect})"
      return out
    end
    case want
    when Array
      if got.size != want.size
        out << "#{where}: #{got.size} items (want #{want.size})"
      else
        want.each_index { |i| problems(got[i], want[i], "#{where}[#{i}]", out) }
      end
    when Hash
      if got.keys != want.keys
        out << "#{where}: keys #{got.keys.inspect} (want #{want.keys.inspect})"
      else
        want.each_key { |k| problems(got[k], want[k], "#{where}[#{k.inspect}]", out) }
      end
    when ActiveSupport::Duration
      out << "#{where}: #{got.inspect} parts #{got.parts.inspect} (want #{want.parts.inspect})" unless got == want && got.parts.to_h == want.parts.to_h
    when ActiveSupport::TimeWithZone
      out << "#{where}: #{got.inspect} in #{got.time_zone.name} (want #{want.inspect} in #{want.time_zone.name})" unless got == want && got.time_zone.name == want.time_zone.name
    when Time, DateTime
      out << "#{where}: #{got.inspect} (want #{want.inspect})" unless got == want && got.utc_offset == want.utc_offset
    when Range
      problems(got.begin, want.begin, "#{where}.begin", out)
      problems(got.end, want.end, "#{where}.end", out)
      out << "#{where}: exclude_end #{got.exclude_end?}" unless got.exclude_end? == want.exclude_end?
    else
      out << "#{where}: #{got.inspect} (want #{want.inspect})" unless got == want
    end
    out
  end

  def self.record(job, extra)
    entry = {
      "job" => job.class.name,
      "job_id" => job.job_id,
      "jid" => job.provider_job_id,
      "executions" => job.executions,
      "rails" => RAILS,
      "sidekiq" => Sidekiq::VERSION,
      "at" => Time.now.to_f,
    }.merge(extra)
    Sidekiq.redis { |r| r.rpush(DONE_KEY, JSON.generate(entry)) }
  end

  def self.described(args, kwargs)
    {
      "received" => args.map { |a| "#{a.class}: #{a.inspect}" },
      "kwargs" => kwargs.to_h { |k, v| [k.to_s, "#{v.class}: #{v.inspect}"] },
    }
  end
end

Sidekiq.configure_client { |config| config.redis = { url: AjInterop::REDIS_URL } }
Sidekiq.configure_server do |config|
  config.redis = { url: AjInterop::REDIS_URL }
  # gokogeri's host tests cannot wait out the poller's default 5 s (interop's jobs.rb sets its own).
  if (poll = ENV["SIDEKIQ_POLL_INTERVAL"])
    if config.respond_to?(:[]=)
      config[:poll_interval_average] = Float(poll) # 7.x, 8.x
    else
      Sidekiq.options[:poll_interval_average] = Float(poll) # 6.x
    end
  end
end
GlobalID.app = "gokogeri"
# What a Rails app has by default (config.time_zone = "UTC"): TimeWithZone needs a Time.zone.
Time.zone_default = Time.find_zone!("UTC") # Time.zone= would be per thread
ActiveJob::Base.queue_adapter = :sidekiq
ActiveJob::Base.logger = Logger.new($stderr, level: Logger::WARN)

# Checks that perform received exactly the sample, and records the verdict.
class AjSampleJob < ActiveJob::Base
  queue_as :default

  def perform(*args, **kwargs)
    want_args, want_kwargs = AjInterop.expected
    problems = AjInterop.problems(args, want_args, "args")
    AjInterop.problems(kwargs, want_kwargs, "kwargs", problems)
    AjInterop.record(self, AjInterop.described(args, kwargs).merge("ok" => problems.empty?, "problems" => problems))
  end
end

# Records its arguments (inspected) whatever they are.
class AjRecordJob < ActiveJob::Base
  queue_as :default

  def perform(*args, **kwargs)
    AjInterop.record(self, AjInterop.described(args, kwargs).merge("ok" => true, "problems" => []))
  end
end

# Records, then raises: a failure Sidekiq retries on the wrapper (no ActiveJob retry_on here).
class AjFailJob < ActiveJob::Base
  queue_as :default

  def perform(message, *_rest)
    AjInterop.record(self, "ok" => false, "problems" => [message])
    raise ArgumentError, message
  end
end

module AjInterop
  JOBS = { "AjSampleJob" => AjSampleJob, "AjRecordJob" => AjRecordJob, "AjFailJob" => AjFailJob }.freeze
end

module AjInterop
  # The command line (see the top of this file); `out` gets the JSON.
  def self.main(argv)
    # Sidekiq 7/8 log to stdout even in a client-only script: keep the real stdout for JSON.
    out = STDOUT.dup
    STDOUT.reopen(STDERR)
    case argv[0]
    when "info"
      wrapper = defined?(Sidekiq::ActiveJob::Wrapper) ? "Sidekiq::ActiveJob::Wrapper" : "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
      out.puts JSON.generate("rails" => RAILS, "sidekiq" => Sidekiq::VERSION, "wrapper" => wrapper,
                             "adapter" => ActiveJob::Base.queue_adapter.class.name, "ruby" => RUBY_VERSION)
    when "enqueue"
      klass = JOBS.fetch(argv.fetch(1))
      options = { queue: argv.fetch(2) }
      options[:wait] = Float(argv[3]).seconds if argv[3] && Float(argv[3]) > 0
      args, kwargs = argv[4] ? [JSON.parse(argv[4]), {}] : sample
      job = klass.set(**options).perform_later(*args, **kwargs)
      out.puts JSON.generate("job_id" => job.job_id, "provider_job_id" => job.provider_job_id,
                             "rails" => RAILS, "sidekiq" => Sidekiq::VERSION)
    else
      abort "usage: #{$PROGRAM_NAME} info | enqueue JOB QUEUE [WAIT] [ARGS_JSON]"
    end
  end
end

AjInterop.main(ARGV) if $PROGRAM_NAME == __FILE__
