-- Every changing script starts with this.  KEYS[1] is meta, KEYS[2] the client's ops hash;
-- ARGV[1..4] are the ops field, the batch token ("" for none), the ops TTL and the channel.
-- The field is "<kind>@<epoch>": the incarnation of the queue the client knows.  Unless
-- meta holds that epoch (the keys were wiped, or made anew since), nothing runs and the
-- reply is the error "EPOCH <epoch in meta, or nothing>": ids and delivery numbers restart
-- with a new incarnation, so that a change meant for the old one must not touch the new.
-- A batch resent under the same token replays the stored reply instead of running again.
-- Tokens grow with each batch of a field, and a client sends a field's next batch only
-- once the previous one is over (answered or given up on).  A batch older than the last
-- one applied is therefore a stale copy, still queued on a connection the client dropped
-- (e.g. while the server was stopped): it may have run already, so it never runs.
local meta, ops = KEYS[1], KEYS[2]
local field, tok, ttl, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch ~= string.sub(field, (string.find(field, '@', 1, true) or 0) + 1) then
  return redis.error_reply('EPOCH ' .. (epoch or ''))
end
if tok ~= '' then
  local prev = redis.call('HGET', ops, field)
  if prev then
    local bar = string.find(prev, '|', 1, true)
    local last, this = tonumber(string.sub(prev, 1, bar - 1)), tonumber(tok)
    if this == last then return cmsgpack.unpack(string.sub(prev, bar + 1)) end
    if this < last then return redis.error_reply('STALE batch superseded; not applied') end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local changed = false
local function record(res)
  if tok ~= '' then
    redis.call('HSET', ops, field, tok .. '|' .. cmsgpack.pack(res))
    redis.call('EXPIRE', ops, ttl)
  end
  if changed then redis.call('PUBLISH', channel, ops) end
  return res
end
local function finish(res)
  -- The last element says whether the change was published: the Python side then wakes
  -- its own waiters itself, and ignores its own message.
  res[#res + 1] = changed and 1 or 0
  return record(res)
end
local function fmt(x) return string.format('%.6f', x) end
-- One command over many arguments, in chunks that Lua's unpack() can take.
local function bulk(cmd, key, list)
  for i = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, i, math.min(i + 999, #list)))
  end
end
local function to_dead(dead, deadinfo, id, reason)
  local order = redis.call('HINCRBY', meta, 'deadseq', 1)
  redis.call('ZADD', dead, order, id)
  redis.call('HSET', deadinfo, id, fmt(now) .. '|' .. reason)
end
