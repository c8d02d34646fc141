-- Read-only.  KEYS: meta ready delayed items attempts.  ARGV[1] the most items (>= 1).
-- Reply: {epoch ("": no queue), then id, payload, attempts of each of the next ready
-- items in the order claims take them (by id), delayed items whose delay passed included}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[2], 0, limit - 1)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  ids[#ids + 1] = id
end
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
local res = {redis.call('HGET', KEYS[1], 'epoch') or ''}
for i = 1, math.min(limit, #ids) do
  local id = ids[i]
  res[#res + 1] = id
  res[#res + 1] = redis.call('HGET', KEYS[4], id) or ''
  res[#res + 1] = redis.call('HGET', KEYS[5], id) or '0'
end
return res
