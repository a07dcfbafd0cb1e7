-- Add a batch of lines to a task's log with the next seq; keep the log within max lines.
-- ARGV: prefix, task id, now as JSON, batch as JSON, line count, max lines, writer, number.
-- writer/number ("" when unused) make a replay of the same batch a no-op.
-- Returns the seq, 0 for a batch applied before, -1 when the task does not exist.
local k, id, now, batch, count, max_lines, writer, number =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local task_key = k .. 'task:' .. id
if redis.call('EXISTS', task_key) == 0 then
    return -1
end
if writer ~= '' then
    local done = tonumber(redis.call('HGET', task_key, 'w:' .. writer) or '0')
    if done >= tonumber(number) then
        return 0
    end
    redis.call('HSET', task_key, 'w:' .. writer, number)
end
local seq = redis.call('HINCRBY', task_key, 'logseq', 1)
local log_key = k .. 'logs:' .. id
redis.call('ZADD', log_key, seq, seq .. ' ' .. count .. ' ' .. batch)
redis.call('HSET', task_key, 'last_update', now)
local total = redis.call('HINCRBY', task_key, 'loglines', count)
while total > max_lines and redis.call('ZCARD', log_key) > 1 do
    local oldest = redis.call('ZRANGE', log_key, 0, 0)[1]
    local dropped = tonumber(string.match(oldest, '^%d+ (%d+) '))
    redis.call('ZREMRANGEBYRANK', log_key, 0, 0)
    total = redis.call('HINCRBY', task_key, 'loglines', -dropped)
end
return seq
