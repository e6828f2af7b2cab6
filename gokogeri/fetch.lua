-- Crash-safe fetch: acknowledge finished jobs and move up to N new ones into
-- this node's working lists, in one round trip.
--
-- KEYS: queue:<q1>, <working q1>, queue:<q2>, <working q2>, ... (pair i = KEYS[2i-1], KEYS[2i])
-- ARGV[1]: how many jobs to move at most (0 = acknowledge only)
-- ARGV[2]: number of acknowledgements n, followed by n (pair index, payload) couples
-- then: the pair indexes in the order to try the queues for this fetch
-- Returns a flat array: pair index, payload, pair index, payload, ...
local limit = tonumber(ARGV[1])
local nacks = tonumber(ARGV[2])
local i = 3
for _ = 1, nacks do
  -- count -1: search from the tail, where the oldest (usually finished) jobs are
  redis.call('LREM', KEYS[tonumber(ARGV[i]) * 2], -1, ARGV[i + 1])
  i = i + 2
end
local out = {}
local got = 0
while got < limit and i <= #ARGV do
  local pair = tonumber(ARGV[i])
  local src, dst = KEYS[pair * 2 - 1], KEYS[pair * 2]
  while got < limit do
    local job = redis.call('LMOVE', src, dst, 'RIGHT', 'LEFT')
    if not job then break end
    got = got + 1
    out[#out + 1] = pair
    out[#out + 1] = job
  end
  i = i + 1
end
return out
