-- Delete a lock only if we still hold it (it may have expired and been taken).
-- KEYS[1]: lock key, ARGV[1]: our token
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
