-- What every changing script starts with (prelude.lua runs its checks; put.lua runs them
-- itself, with the reads it makes anyway).  KEYS[1] is meta, KEYS[2] the client's ops
-- hash; ARGV[1..4] are the ops field, the batch token ("" for none), the ops TTL and the
-- channel.  The field is "<kind>@<epoch>": the incarnation of the queue the client knows.
-- Unless meta holds that epoch (the keys were wiped, or made anew since), nothing runs and
-- the reply is the error "EPOCH <epoch in meta, or nothing>": ids and delivery numbers
-- restart with a new incarnation, so that a change meant for the old one must not touch
-- the new.
-- A batch resent under the same token replays its stored reply instead of running again.
-- Tokens grow with each batch of a field; the field holds the last one applied, and the
-- replies of the last 8 are kept (field#<token mod 8>), so that a client may have several
-- batches of a field in flight on one connection and resend them all after a lost reply.
-- A batch older than the last one applied whose reply is not kept is a stale copy, still
-- queued on a connection the client dropped (e.g. while the server was stopped): it may
-- have run already, so it never runs.  A token ending in "+" is chained: it runs only
-- right after the token before it (error "GAP" otherwise, nothing done), so that batches
-- sent one behind the other are applied in the order sent even when one of them failed
-- (e.g. NOSCRIPT after a restart): the client resends them, in order.
local meta, ops = KEYS[1], KEYS[2]
local field, tok, ttl, channel = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local changed = false
local slot = ''
-- Whether this batch is chained to the one before it (its token ended in "+").
local chained = false
-- Reply for a batch that must not run (an error, or the reply stored for its token), or
-- nil when it may run.  `epoch` is meta's.
local function admit(epoch)
  if epoch ~= string.sub(field, (string.find(field, '@', 1, true) or 0) + 1) then
    return redis.error_reply('EPOCH ' .. (epoch or ''))
  end
  if tok == '' then return nil end
  chained = string.sub(tok, -1) == '+'
  if chained then tok = string.sub(tok, 1, -2) end
  local this = tonumber(tok)
  slot = field .. '#' .. (this % 8)
  local prev = redis.call('HMGET', ops, field, slot)
  local last = tonumber(prev[1] or '0')
  if this <= last then
    local kept = prev[2]
    local bar = kept and string.find(kept, '|', 1, true)
    if bar and string.sub(kept, 1, bar - 1) == tok then
      if string.sub(kept, bar + 1, bar + 1) == 's' then return string.sub(kept, bar + 2) end
      return cmsgpack.unpack(string.sub(kept, bar + 2))
    end
    return redis.error_reply('STALE batch superseded; not applied')
  end
  if chained and this ~= last + 1 then
    return redis.error_reply('GAP the batch before was not applied; not applied')
  end
  return nil
end
local function record(res)
  if tok ~= '' then
    local kept = type(res) == 'string' and 's' .. res or 'm' .. cmsgpack.pack(res)
    redis.call('HSET', ops, field, tok, slot, tok .. '|' .. kept)
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
