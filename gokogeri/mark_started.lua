#!lua flags=allow-oom
-- Record, before a job runs, which job a processor thread is starting: rescue
-- counts only started jobs toward the poison limit, never prefetched ones.
-- KEYS[1]: this node's started hash; ARGV[1]: thread id, ARGV[2]: payload
-- digest, ARGV[3]: TTL seconds (long after any rescue could happen)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
