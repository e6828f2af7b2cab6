#!lua flags=allow-oom
-- allow-oom: moving and settling jobs must work on a full Redis, or it
-- could never be drained (scripts.py strips the flag for Redis < 7).
-- Move a member of a sorted set (schedule/retry) or a list (a dead node's
-- working list) into the dead set, atomically and only if it is still there.
--
-- KEYS[1]: source, KEYS[2]: dead zset
-- ARGV[1]: member as stored, ARGV[2]: payload for the dead set, ARGV[3]: now,
-- ARGV[4]: dead cutoff score, ARGV[5]: dead max jobs, ARGV[6]: "zset" | "list"
local removed
if ARGV[6] == 'zset' then
  removed = redis.call('ZREM', KEYS[1], ARGV[1])
else
  removed = redis.call('LREM', KEYS[1], -1, ARGV[1])
end
if removed == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[5]))
return 1
