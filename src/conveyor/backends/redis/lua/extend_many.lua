--! include prelude current
-- KEYS: meta ops leased lease.  ARGV[5] lease timeout, from 6: id, delivery pairs.
-- Renews many leases at once (a consumer's held items, each round).  Reply: {flags},
-- one character a receipt: "1" extended, "0" not (stale: expired or settled).
local flags = {}
local deadline = now + tonumber(ARGV[5])
local extended = {}
for k, ok in ipairs(current_many(KEYS[4], KEYS[3], 6)) do
  if ok then
    extended[#extended + 1] = deadline
    extended[#extended + 1] = ARGV[2 * k + 4]
    flags[k] = '1'
  else
    flags[k] = '0'
  end
end
for i = 1, #extended, 1000 do
  redis.call('ZADD', KEYS[3], 'XX', unpack(extended, i, math.min(i + 999, #extended)))
end
return finish({table.concat(flags)})
