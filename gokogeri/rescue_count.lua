#!lua flags=allow-oom
-- Count one more rescue of a started job (its poison-pill counter).
-- KEYS[1]: the job's counter; ARGV[1]: TTL seconds. Returns the new count.
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
