--! include prelude jobs current
-- KEYS: meta ops ready leased lease attempts, then the jobs keys (jobs.lua).  ARGV from 5: id, delivery pairs.  Gives
-- back leases whose items never reached a user: ready at once, the delivery uncounted.
local res = {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  if end_lease(KEYS[5], KEYS[4], id, ARGV[i + 1]) then
    redis.call('HINCRBY', KEYS[6], id, -1)
    make_ready(KEYS[3], id)
    changed = true
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
return finish(res)
