#!lua flags=allow-oom
-- allow-oom: moving and settling jobs must work on a full Redis, or it
-- could never be drained (scripts.py strips the flag for Redis < 7).
-- Crash-safe fetch: acknowledge finished jobs and move up to N new ones into
-- this node's working lists, in one round trip.
--
-- KEYS: queue:<q1>, <working q1>, queue:<q2>, <working q2>, ... (pair i = KEYS[2i-1], KEYS[2i]),
-- and last, this node's start-marker hash
-- ARGV[1]: how many jobs to move at most (0 = acknowledge only)
-- ARGV[2]: number of acknowledgements n, followed by n (pair index, payload) couples
-- then: number of start markers m, the markers' TTL, and m (thread id, digest) couples
-- (started.py: which job each processor thread started since the last call)
-- then: nq (queues per order), norders, and norders orders of nq pair indexes.
-- Each job slot tries the queues in its own order, as if it were its own
-- BRPOP: weighted queue sets pass one shuffled order per slot, strict ones
-- pass a single order that every slot reuses.
-- Returns a flat array: pair index, payload, pair index, payload, ...
local limit = tonumber(ARGV[1])
local nacks = tonumber(ARGV[2])
local i = 3
for _ = 1, nacks do
  -- count -1: search from the tail, where the oldest (usually finished) jobs are
  redis.call('LREM', KEYS[tonumber(ARGV[i]) * 2], -1, ARGV[i + 1])
  i = i + 2
end
local nmarks = tonumber(ARGV[i])
local ttl = ARGV[i + 1]
i = i + 2
if nmarks > 0 then
  local marks = {}
  for _ = 1, nmarks do
    marks[#marks + 1] = ARGV[i]
    marks[#marks + 1] = ARGV[i + 1]
    i = i + 2
  end
  redis.call('HSET', KEYS[#KEYS], unpack(marks))
  redis.call('EXPIRE', KEYS[#KEYS], ttl)
end
local out = {}
if limit == 0 then return out end
local nq = tonumber(ARGV[i])
local norders = tonumber(ARGV[i + 1])
local base = i + 2
if norders == 1 then
  -- One order for every slot: take what is left from each queue in turn with
  -- one RPOP and one LPUSH, the same moves as a LMOVE per job in two calls
  -- (Redis CPU per job 9.3 -> 6.1 us on the 1 ms-sleep drain).
  for k = 0, nq - 1 do
    local pair = tonumber(ARGV[base + k])
    local jobs = redis.call('RPOP', KEYS[pair * 2 - 1], limit - #out / 2)
    if jobs then
      redis.call('LPUSH', KEYS[pair * 2], unpack(jobs))
      for _, job in ipairs(jobs) do
        out[#out + 1] = pair
        out[#out + 1] = job
      end
      if #out / 2 >= limit then break end
    end
  end
  return out
end
for slot = 0, limit - 1 do
  local o = base
  if norders > 1 then o = base + slot * nq end
  local job = false
  for k = 0, nq - 1 do
    local pair = tonumber(ARGV[o + k])
    job = redis.call('LMOVE', KEYS[pair * 2 - 1], KEYS[pair * 2], 'RIGHT', 'LEFT')
    if job then
      out[#out + 1] = pair
      out[#out + 1] = job
      break
    end
  end
  if not job then break end -- every queue is empty
end
return out
