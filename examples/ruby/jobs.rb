# The Ruby side of the example: plain Sidekiq job classes, no Rails. The same
# contracts (schemas/*.json) describe what their perform methods take.
#
#   sidekiq -r ./ruby/jobs.rb -q mailers -q media     (REDIS_URL picks the Redis)
require "json"
require "sidekiq"

ExampleJob = defined?(Sidekiq::Job) ? Sidekiq::Job : Sidekiq::Worker # Sidekiq 6 names it Worker

# What the jobs did, so a Ruby test (or the example's pytest suite, through Redis) can look.
module Outbox
  def self.deliver(kind, record)
    if ENV["EXAMPLE_OUTBOX"] == "redis"
      Sidekiq.redis { |r| r.rpush("example:outbox", JSON.generate(record.merge("kind" => kind))) }
    end
  end
end

class WelcomeEmailJob
  include ExampleJob
  sidekiq_options queue: "mailers", retry: 5

  GREETINGS = { "en" => "Welcome", "fr" => "Bienvenue", "ja" => "ようこそ" }.freeze

  def perform(user_id, email, locale = "en", referrer = nil)
    greeting = GREETINGS.fetch(locale)
    Outbox.deliver("email", { "user_id" => Integer(user_id), "to" => email,
                              "subject" => "#{greeting}!", "referrer" => referrer })
  end
end

module Media
  class ResizeImageJob
    include ExampleJob
    sidekiq_options queue: "media"

    def perform(image_id, width, height, format = "png")
      raise ArgumentError, "unknown format #{format}" unless %w[png jpeg webp].include?(format)

      Outbox.deliver("resize", { "image_id" => image_id, "size" => "#{width}x#{height}", "format" => format })
    end
  end
end
