-- Read-only.  KEYS: meta fresh holes ready delayed putat prio.
-- Reply: {seconds since the put of the ready item that waited longest ("0": none
-- ready; "": unknown, as no put time is recorded), "1" when that age is only a lower
-- bound (see below), epoch ("": no queue)}.
-- putat (a zset written by put.lua): checkpoints, each the id of the first item of a put
-- scored by that id, its member the server's time of that put.  A put writes one once the
-- last is a second old, or 1% of the oldest waiting item's age if that is more, so an
-- item's put time is that of the checkpoint at or before its id: early by at most a
-- second, or 1% of the backlog's age when it was put.  Checkpoints older than the items
-- still waiting (and than 10 minutes) are dropped: an item older than every checkpoint
-- kept (put before they were recorded, or back from a long lease or the dead letters) is
-- older than the first kept, a lower bound.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
local epoch = meta[2] or ''
local low = nil
local len = redis.call('LLEN', KEYS[2])
if len > 0 and len > redis.call('SCARD', KEYS[3]) then
  low = tonumber(meta[1] or '0') - len + 1
  -- Skip the holes at the head (items taken out of turn): a few at most.
  for _ = 1, 100 do
    if redis.call('SISMEMBER', KEYS[3], low) == 0 then break end
    low = low + 1
  end
end
for _, first in ipairs({redis.call('ZRANGE', KEYS[4], 0, 0),
    redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1)}) do
  local id = first[1] and tonumber(first[1])
  if id and (low == nil or id < low) then low = id end
end
-- Items of a priority other than 0 (prio, jobs.lua: scored by priority, members their
-- zero-padded ids): the oldest of the 64 a claim would take first, not of all of them.
for _, member in ipairs(redis.call('ZRANGE', KEYS[7], 0, 63)) do
  local id = tonumber(member)
  if low == nil or id < low then low = id end
end
if low == nil then return {'0', '0', epoch} end
local at = redis.call('ZRANGE', KEYS[6], low, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
if at[1] then return {string.format('%.6f', math.max(0, now - tonumber(at[1]))), '0', epoch} end
at = redis.call('ZRANGE', KEYS[6], 0, 0)
if at[1] then return {string.format('%.6f', math.max(0, now - tonumber(at[1]))), '1', epoch} end
return {'', '0', epoch}
