-- Read-only.  KEYS: meta ready delayed items attempts fresh holes.  ARGV[1] the most items
-- (>= 1).  Reply: {epoch ("": no queue), then id, payload, attempts of each of the next
-- ready items in the order claims take them (by id), delayed items whose delay passed
-- included}.  A layout that keeps never-claimed items in the fresh list (their ids follow
-- from their places; holes are ids taken out of turn) has them merged in by id; where the
-- fresh list does not exist, it reads as empty.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[2], 0, limit - 1)
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  ids[#ids + 1] = id
end
local fresh = {}
local len = redis.call('LLEN', KEYS[6])
if len > 0 then
  local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') - len + 1
  local skipped = redis.call('SCARD', KEYS[7])
  local elements = redis.call('LRANGE', KEYS[6], 0, math.min(len, limit + skipped) - 1)
  for j = 1, #elements do
    local id = tostring(head + j - 1)
    if skipped == 0 or redis.call('SISMEMBER', KEYS[7], id) == 0 then
      ids[#ids + 1] = id
      fresh[id] = elements[j]
    end
  end
end
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
local res = {redis.call('HGET', KEYS[1], 'epoch') or ''}
for i = 1, math.min(limit, #ids) do
  local id = ids[i]
  res[#res + 1] = id
  if fresh[id] then
    res[#res + 1] = fresh[id]
    res[#res + 1] = '0'
  else
    res[#res + 1] = redis.call('HGET', KEYS[4], id) or ''
    res[#res + 1] = redis.call('HGET', KEYS[5], id) or '0'
  end
end
return res
