# Drives the generated contract modules in this folder (gokogeri generate --ruby) for
# interop/test_contracts_interop.py, inside the Sidekiq containers or on the host.
# Not generated: gokogeri generate leaves files without its header alone.
#
#   ruby driver.rb push     < [[api, method, args], ...]   -> [jid or {"error": message}, ...]
#   ruby driver.rb perform  < [queue, ...]                  -> [[class, decoded args], ...]
#
# "perform" pops every job of the given queues and runs it the way Sidekiq's processor does
# (klass.new.perform(*args)) through job classes that include the generated Job mixins, so
# perform sees decoded values with defaults filled in.
OUT = STDOUT.dup
STDOUT.reopen(STDERR) # Sidekiq 7/8 log "connecting to Redis" to stdout even in a client
require_relative "all"

PERFORMED = []

def plain(value)
  case value
  when Time then { "time" => value.utc.iso8601(6) }
  when Date then { "date" => value.iso8601 }
  when Hash then value.transform_values { |v| plain(v) }
  when Array then value.map { |v| plain(v) }
  else value.equal?(GokogeriContracts::UNSET) ? { "unset" => true } : value
  end
end

def define_job(path, contract)
  *outer, name = path.split("::")
  parent = outer.reduce(Object) do |mod, part|
    mod.const_defined?(part, false) ? mod.const_get(part, false) : mod.const_set(part, Module.new)
  end
  klass = Class.new do
    include contract::Job

    define_method(:perform) do |*args|
      PERFORMED << [path, plain(args)]
    end
  end
  parent.const_set(name, klass)
end

# Sidekiq job contracts (ActiveJob contracts have no CLASS_NAME: they are
# mixed into a Rails job class, and tested with real Rails in tests/codegen).
CONTRACTS = GokogeriContracts.constants.sort.map { |c| GokogeriContracts.const_get(c) }
                             .select { |m| m.is_a?(Module) && m.const_defined?(:ARGS, false) }
                             .select { |m| m.const_defined?(:CLASS_NAME, false) }
CONTRACTS.each { |c| define_job(c::CLASS_NAME, c) }

input = JSON.parse($stdin.read)
case ARGV[0]
when "push"
  out = input.map do |api, method, args|
    GokogeriContracts.const_get(api).public_send(method, *args)
  rescue GokogeriContracts::ArgumentError => e
    { "error" => e.message }
  end
  OUT.puts JSON.generate(out)
when "perform"
  by_class = CONTRACTS.to_h { |c| [c::CLASS_NAME, Object.const_get(c::CLASS_NAME)] }
  input.each do |queue|
    while (raw = Sidekiq.redis { |conn| conn.rpop("queue:#{queue}") })
      job = JSON.parse(raw)
      begin
        by_class.fetch(job["class"]).new.perform(*job["args"])
      rescue GokogeriContracts::ArgumentError => e
        PERFORMED << [job["class"], { "error" => e.message }]
      end
    end
  end
  OUT.puts JSON.generate(PERFORMED)
else
  abort "usage: driver.rb push|perform < json"
end
