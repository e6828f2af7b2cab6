#!lua flags=allow-oom
-- allow-oom: moving and settling jobs must work on a full Redis, or it
-- could never be drained (scripts.py strips the flag for Redis < 7).
-- Record a failed job's outcome and acknowledge it atomically: the job leaves
-- the working list and enters the retry or dead set in one step, or neither
-- happens. Without a working list (BRPOP fetch) KEYS[1] is an unused key.
--
-- KEYS[1]: working list (or "" placeholder), KEYS[2]: retry or dead zset
-- ARGV[1]: original payload, ARGV[2]: "retry" | "dead" | "drop", ARGV[3]: score,
-- ARGV[4]: new payload, ARGV[5]: dead cutoff score, ARGV[6]: dead max jobs,
-- ARGV[7]: "1" if the job came from a working list
if ARGV[7] == '1' and redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0 -- already requeued by a shutdown or rescued by another node
end
if ARGV[2] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
elseif ARGV[2] == 'dead' then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[6]))
end
return 1
