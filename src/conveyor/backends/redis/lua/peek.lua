-- Read-only.  KEYS: meta ready delayed items attempts fresh holes, then the jobs keys
-- (prio, priority, ...: see jobs.lua).  ARGV[1] the most items (>= 1).  Reply: {epoch ("":
-- no queue), then id, payload, attempts of each of the next ready items in the order
-- claims take them (by priority, then id), delayed items whose delay passed included}.
-- A layout that keeps never-claimed items in the fresh list (their ids follow from their
-- places; holes are ids taken out of turn) has them merged in by id; where the fresh list
-- does not exist, it reads as empty.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local prio, priority = KEYS[8], KEYS[9]
-- Each candidate: {priority, id}.
local found = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, limit - 1)) do
  found[#found + 1] = {0, tonumber(id)}
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)) do
  found[#found + 1] = {tonumber(redis.call('HGET', priority, id) or '0'), tonumber(id)}
end
local ranked = redis.call('ZRANGE', prio, 0, limit - 1, 'WITHSCORES')
for i = 1, #ranked, 2 do
  found[#found + 1] = {tonumber(ranked[i + 1]), tonumber(ranked[i])}
end
local fresh = {}
local len = redis.call('LLEN', KEYS[6])
if len > 0 then
  local head = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') - len + 1
  local skipped = redis.call('SCARD', KEYS[7])
  local elements = redis.call('LRANGE', KEYS[6], 0, math.min(len, limit + skipped) - 1)
  for j = 1, #elements do
    local id = head + j - 1
    if skipped == 0 or redis.call('SISMEMBER', KEYS[7], id) == 0 then
      found[#found + 1] = {0, id}
      fresh[tostring(id)] = elements[j]
    end
  end
end
table.sort(found, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local res = {redis.call('HGET', KEYS[1], 'epoch') or ''}
for i = 1, math.min(limit, #found) do
  local id = tostring(found[i][2])
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
