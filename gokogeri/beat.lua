#!lua flags=allow-oom
-- The liveness part of a heartbeat: the process list, the identity hash and
-- its TTL, and one pending signal. Allowed on a full Redis: a live node that
-- cannot beat would look dead, and its jobs would be rescued and run twice.
-- KEYS[1]: processes set, KEYS[2]: identity hash, KEYS[3]: signals list
-- ARGV[1]: identity, ARGV[2]: TTL seconds, then field, value, ... for the hash
redis.call('SADD', KEYS[1], ARGV[1])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return redis.call('RPOP', KEYS[3])
