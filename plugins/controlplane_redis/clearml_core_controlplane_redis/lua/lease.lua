-- Take or renew a lease: free or already ours, it is (again) ours for the given milliseconds.
-- KEYS[1]: the lease; ARGV: our token, milliseconds. Returns 1 when we hold it, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
