--! include prelude current
-- KEYS: meta ops leased lease.  ARGV[5] id, [6] delivery, [7] lease timeout.
-- Reply: {new deadline} or {''} when the receipt is stale.
local id = ARGV[5]
if not current(KEYS[4], KEYS[3], id, ARGV[6]) then return finish({''}) end
local deadline = now + tonumber(ARGV[7])
redis.call('ZADD', KEYS[3], deadline, id)
return finish({fmt(deadline)})
