-- Hand out the head of the first non-empty queue, exactly once: the task leaves its queue, becomes
-- in_progress with the worker and enters the worker's running set, in one atomic step.
-- ARGV: prefix ("name:"), worker id, worker id as JSON, now as JSON, call token, number of queues,
-- the queue names, then the record fields to return.
-- Returns {id, the task's values of those fields}, or false when every queue is empty.
local k, worker, worker_json, now, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local last_queue = 6 + tonumber(ARGV[6])
local fields = {}
for i = last_queue + 1, #ARGV do
    fields[#fields + 1] = ARGV[i]
end

-- A retried call (its reply was lost with the connection) gets the task it already took.
local last_key = k .. 'lastpop:' .. worker
local last = redis.call('GET', last_key)
if last then
    local space = string.find(last, ' ', 1, true)
    if space and string.sub(last, 1, space - 1) == token then
        local id = string.sub(last, space + 1)
        return {id, redis.call('HMGET', k .. 'task:' .. id, unpack(fields))}
    end
end

for i = 7, last_queue do
    local queue_key = k .. 'queue:' .. ARGV[i]
    while true do
        local head = redis.call('ZPOPMIN', queue_key)
        if #head == 0 then
            break
        end
        local id = head[1]
        local task_key = k .. 'task:' .. id
        -- an entry whose task was deleted or changed meanwhile is dropped; look again
        if redis.call('HGET', task_key, 'status') == '"queued"' then
            local seq = redis.call('HGET', task_key, 'seq')
            redis.call('HSET', task_key, 'status', '"in_progress"', 'worker', worker_json, 'started', now,
                'ended', 'null', 'exit_code', 'null', 'status_reason', '""', 'abort_requested', 'false',
                'last_update', now)
            redis.call('ZREM', k .. 'status:queued', id)
            redis.call('ZADD', k .. 'status:in_progress', seq, id)
            redis.call('ZADD', k .. 'running:' .. worker, seq, id)
            redis.call('SET', last_key, token .. ' ' .. id, 'EX', 3600)
            -- the doorbell this caller may have taken could belong to another queue: ring again
            -- wherever work is left, so no waiting daemon sleeps through it
            for j = 7, last_queue do
                if redis.call('EXISTS', k .. 'queue:' .. ARGV[j]) == 1 then
                    redis.call('ZADD', k .. 'ring:' .. ARGV[j], 0, 'ring')
                end
            end
            return {id, redis.call('HMGET', task_key, unpack(fields))}
        end
    end
end
return false
