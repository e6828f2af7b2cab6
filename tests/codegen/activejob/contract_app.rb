# The Rails side of tests/codegen/activejob/contract_mail.json: a Rails-less ActiveJob app
# (Debian's ruby-activejob + ruby-sidekiq on the host) whose AjContractJob#perform has the
# signature the schema describes -- positional arguments, an optional one, then keyword
# arguments -- and asserts that it received exactly the Ruby values of the contract sample.
# The job class includes the module `gokogeri generate --ruby` wrote for the schema (in
# $GOKOGERI_CONTRACTS), so the generated Ruby checks perform_later's and perform's arguments
# too. It reuses interop/ruby/activejob.rb (Sidekiq/Redis setup, the GlobalID-locatable
# AjInterop::User, the exact comparison and the aj:done record).
#
# Loaded by `sidekiq -r` (runs AjContractJob), and as a script:
#   ruby contract_app.rb enqueue QUEUE   AjContractJob.set(queue:).perform_later(sample); JSON
#   ruby contract_app.rb refused         perform_later with bad values; the errors as JSON
require_relative "../../../interop/ruby/activejob"
require File.join(ENV.fetch("GOKOGERI_CONTRACTS"), "all")

module AjContract
  # The sample in Ruby: [positional, keywords]. tests/codegen/test_codegen_activejob.py holds
  # the same values in Python (SAMPLE); the two must stay in step.
  def self.sample
    paris = Time.find_zone!("Europe/Paris")
    args = [AjInterop::User.new(42), 7, "héllo", %i[a b]]
    kwargs = {
      at: Time.utc(2026, 1, 2, 3, 4, 5, 123_456),
      plan: :vip,
      trial: 2.days + 3.hours,
      price: BigDecimal("12.5"),
      day: Date.new(2026, 2, 28),
      legacy: DateTime.new(2026, 1, 2, 3, 4, 5, "+01:00"),
      zoned: paris.local(2026, 6, 1, 14, 30, 0),
      kind: AjInterop::User,
      options: { "retries" => 3, "label" => "x" },
      locale: "en",
    }
    [args, kwargs]
  end

  # What perform receives from a Python perform_later of the sample on this Rails: before 7.1
  # a BigDecimal travels as a String and a TimeWithZone comes back in the app's Time.zone.
  def self.expected
    args, kwargs = sample
    unless AjInterop::RAILS_GE_71
      kwargs = kwargs.merge(price: kwargs[:price].to_s("F"), zoned: kwargs[:zoned].in_time_zone(Time.zone))
    end
    [args, kwargs.merge(coupon: nil)]
  end
end

class AjContractJob < ActiveJob::Base
  include GokogeriContracts::AjContract::Job # queue_as "contracts" and the argument checks

  # The signature contract_mail.json describes: Ruby itself refuses a missing or unknown keyword.
  def perform(user, count, note, tags = [], at:, plan:, trial:, price:, day:, legacy:, zoned:, kind:,
              options:, locale: "en", coupon: nil)
    got = [[user, count, note, tags],
           { at: at, plan: plan, trial: trial, price: price, day: day, legacy: legacy, zoned: zoned,
             kind: kind, options: options, locale: locale, coupon: coupon }]
    want_args, want_kwargs = AjContract.expected
    problems = AjInterop.problems(got[0], want_args, "args")
    AjInterop.problems(got[1], want_kwargs, "kwargs", problems)
    AjInterop.record(self, AjInterop.described(*got).merge("ok" => problems.empty?, "problems" => problems))
  end
end

module AjContract
  # Wrong calls (the same ones the Python test makes): each must raise before anything is sent.
  def self.refused
    args, kwargs = sample
    {
      "count" => [[args[0], 0, *args[2..]], kwargs],
      "tag" => [[*args[0..2], [:a, "b"]], kwargs],
      "plan" => [args, kwargs.merge(plan: "vip")],
      "user" => [["gid://gokogeri/User/1", *args[1..]], kwargs],
      "options" => [args, kwargs.merge(options: { "label" => "x" })],
      "unknown" => [args, kwargs.merge(extra: 1)],
      "day" => [args, kwargs.merge(day: DateTime.new(2026, 1, 1))],
    }.transform_values do |(a, k)|
      AjContractJob.perform_later(*a, **k)
      "not refused"
    rescue GokogeriContracts::ArgumentError => e
      e.message
    end
  end
end

if $PROGRAM_NAME == __FILE__
  out = STDOUT.dup
  STDOUT.reopen(STDERR)
  case ARGV[0]
  when "enqueue"
    args, kwargs = AjContract.sample
    job = AjContractJob.set(queue: ARGV.fetch(1)).perform_later(*args, **kwargs)
    out.puts JSON.generate("job_id" => job.job_id, "provider_job_id" => job.provider_job_id,
                           "rails" => AjInterop::RAILS)
  when "refused"
    out.puts JSON.generate(AjContract.refused)
  else
    abort "usage: #{$PROGRAM_NAME} enqueue QUEUE | refused"
  end
end
