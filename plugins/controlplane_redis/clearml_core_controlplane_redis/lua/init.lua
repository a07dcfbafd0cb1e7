-- Lay out a new store (its meta record and the default queue) unless one is there; returns the
-- store's schema version. ARGV: prefix, schema version, now as JSON, the default queue's record.
local k = ARGV[1]
if redis.call('EXISTS', k .. 'meta') == 0 then
    redis.call('HSET', k .. 'meta', 'schema', ARGV[2], 'created', ARGV[3])
    redis.call('HSETNX', k .. 'queues', 'default', ARGV[4])
end
return redis.call('HGET', k .. 'meta', 'schema')
