--! include prelude jobs current
-- KEYS: meta ops ready delayed leased lease, then the jobs keys (jobs.lua).  ARGV[5] id, [6] delivery, [7] delay.
local id = ARGV[5]
if not end_lease(KEYS[6], KEYS[5], id, ARGV[6]) then return finish({0}) end
local delay = tonumber(ARGV[7])
if delay > 0 then
  redis.call('ZADD', KEYS[4], now + delay, id)
else
  make_ready(KEYS[3], id)
end
changed = true
return finish({1})
