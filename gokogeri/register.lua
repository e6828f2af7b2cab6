#!lua flags=allow-oom
-- Register this node's working lists, so live nodes can rescue them if it
-- dies. Allowed on a full Redis: a node that cannot register must not fetch,
-- and a full Redis is exactly when a fresh node is needed to drain it.
-- KEYS[1]: working registry hash; ARGV: field, value, field, value, ...
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
