--! include prelude jobs fresh putat
-- KEYS: meta ops fresh holes ready delayed items putat, then the jobs keys (jobs.lua).
-- ARGV[5] the number of items, then five arguments an item: delay (seconds, "0": none),
-- priority, key ("-" none, else "k" and the key), ttl (seconds, "": none), payload.
-- Puts items with job options, all or none: items whose key an unfinished item holds
-- (or an earlier item of this batch) are skipped; the others are stored if the queue has
-- room for all of them (delayed items count), the bound read here as in put.lua.
-- Reply: {"shutdown"}; {0} no room, nothing stored; or {1, then per item its id, or 0
-- where its key was taken}, then whether published (see finish).
-- Each item takes the next id, as put.lua's do; none goes into the fresh list (whose
-- places name ids), so a non-empty one gets an empty element and a hole for it.
local state = redis.call('HMGET', meta, 'shutdown', 'maxsize')
if state[1] == '1' then return finish({'shutdown'}) end
local maxsize = tonumber(state[2] or '0') or 0
if maxsize <= 0 or maxsize == math.huge then maxsize = 0 else maxsize = math.ceil(maxsize) end
local count = tonumber(ARGV[5])
local keep, taken, stored = {}, {}, 0
for i = 1, count do
  local key = ARGV[6 + 5 * (i - 1) + 2]
  local fresh_key = true
  if key ~= '-' then
    key = string.sub(key, 2)
    fresh_key = not taken[key] and not redis.call('HGET', DEDUP, key)
    taken[key] = true
  end
  keep[i] = fresh_key
  if fresh_key then stored = stored + 1 end
end
if stored == 0 then
  local res = {1}
  for i = 1, count do res[#res + 1] = 0 end
  return finish(res)
end
if maxsize > 0 then
  local size = fresh_count(KEYS[3], KEYS[4]) + redis.call('ZCARD', KEYS[5])
    + redis.call('ZCARD', KEYS[6]) + redis.call('ZCARD', PRIO)
  if size + stored > maxsize then return finish({0}) end
end
local first = redis.call('HINCRBY', meta, 'seq', stored) - stored + 1
local len = redis.call('LLEN', KEYS[3])
local due = redis.call('HGET', meta, 'putnext')
if not due or now >= tonumber(due) then
  checkpoint(KEYS[8], KEYS[5], now, first, len > 0 and first - len or first)
end
if len > 0 then
  local blanks, holes = {}, {}
  for i = 1, stored do
    blanks[i] = ''
    holes[i] = first + i - 1
  end
  bulk('RPUSH', KEYS[3], blanks)
  bulk('SADD', KEYS[4], holes)
end
local res = {1}
local id = first
for i = 1, count do
  if keep[i] then
    local at = 6 + 5 * (i - 1)
    local delay, priority, key, ttl = tonumber(ARGV[at]), ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    local sid = tostring(id)
    redis.call('HSET', KEYS[7], sid, ARGV[at + 4])
    if priority ~= '0' then redis.call('HSET', PRIORITY, sid, priority) end
    if key ~= '-' then
      redis.call('HSET', DEDUP, string.sub(key, 2), sid)
      redis.call('HSET', KEYOF, sid, string.sub(key, 2))
    end
    if ttl ~= '' then redis.call('ZADD', EXPIRES, now + tonumber(ttl), sid) end
    if delay > 0 then
      redis.call('ZADD', KEYS[6], now + delay, sid)
    else
      make_ready(KEYS[5], sid)
    end
    res[#res + 1] = id
    id = id + 1
  else
    res[#res + 1] = 0
  end
end
-- Getters may wait for the ready ones; those that found nothing learn a delayed one's
-- time from their next claim.
changed = true
return finish(res)
