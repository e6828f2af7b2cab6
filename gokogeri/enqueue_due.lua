#!lua flags=allow-oom
-- allow-oom: moving and settling jobs must work on a full Redis, or it
-- could never be drained (scripts.py strips the flag for Redis < 7).
-- Move one due job from the schedule or retry set onto its queue, atomically:
-- it leaves the set and enters the queue in one step, or (if another node
-- moved it first) nothing happens. A node dying mid-move loses nothing.
--
-- KEYS[1]: schedule or retry zset, KEYS[2]: queues set, KEYS[3]: queue:<name>
-- ARGV[1]: the member as stored, ARGV[2]: the payload to push (with
-- enqueued_at set), ARGV[3]: the queue name
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('LPUSH', KEYS[3], ARGV[2])
  return 1
end
return 0
