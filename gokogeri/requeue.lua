#!lua flags=allow-oom
-- allow-oom: moving and settling jobs must work on a full Redis, or it
-- could never be drained (scripts.py strips the flag for Redis < 7).
-- Put jobs a node holds back at the front of their queues: each moves only if
-- it is still in the working list, so two nodes rescuing the same list, or a
-- late acknowledgement, can never push a job twice.
--
-- KEYS: queue:<q1>, <working q1>, queue:<q2>, <working q2>, ...
-- ARGV: (pair index, payload) couples, newest first; each is RPUSHed, so the
-- oldest ends up at the right end and is fetched first again.
-- Returns how many jobs moved.
local moved = 0
for i = 1, #ARGV, 2 do
  local pair = tonumber(ARGV[i])
  if redis.call('LREM', KEYS[pair * 2], -1, ARGV[i + 1]) == 1 then
    redis.call('RPUSH', KEYS[pair * 2 - 1], ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
