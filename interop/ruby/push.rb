# Enqueue jobs with Sidekiq's own client and print what was pushed, as JSON on stdout:
#   {"sidekiq": "<version>", "jids": ["<jid>", ...]}
#
# Input: one JSON spec in ARGV[0], or on stdin when there is no argument.
#   {"class": "X", "queue": "q", "args": [...], <any extra payload field>...}   Client.push
#   ... plus "at": <epoch seconds> or "in": <seconds from now>                 scheduled push
#   {"bulk": true, "class": "X", "queue": "q", "args": [[...], [...]], ...}     Client.push_bulk
#   {"via": "perform_async", "class": "X", "queue": "q", "args": [...]}         X.set(queue:).perform_async
#   {"via": "perform_in", "in": <seconds>, "class": "X", "queue": "q", "args": [...]}  ...perform_in
#     (X one of Interop::JOBS; the class's own sidekiq_options apply, as in application code)
#   [spec, spec, ...]                                                         each in turn
#
# Sidekiq 7/8 log to stdout even in a client-only script ("connecting to Redis..."): keep the
# real stdout for our JSON and send everything else to stderr.
OUT = STDOUT.dup
STDOUT.reopen(STDERR)
require_relative "jobs"

def push_via_class(spec)
  klass = Interop::JOBS.fetch(spec.fetch("class"))
  setter = spec["queue"] ? klass.set(queue: spec["queue"]) : klass
  args = spec.fetch("args", [])
  case spec["via"]
  when "perform_async" then [setter.perform_async(*args)]
  when "perform_in" then [setter.perform_in(Float(spec.fetch("in")), *args)]
  else raise ArgumentError, "unknown via: #{spec["via"].inspect}"
  end
end

def push_one(spec)
  return push_via_class(spec) if spec["via"]

  item = spec.dup
  bulk = item.delete("bulk")
  if (delay = item.delete("in"))
    item["at"] = Time.now.to_f + Float(delay)
  end
  if bulk
    Array(Sidekiq::Client.push_bulk(item))
  else
    [Sidekiq::Client.push(item)]
  end
end

input = ARGV[0] || $stdin.read
specs = JSON.parse(input)
specs = [specs] unless specs.is_a?(Array)
jids = specs.flat_map { |spec| push_one(spec) }
OUT.puts JSON.generate("sidekiq" => Sidekiq::VERSION, "jids" => jids)
