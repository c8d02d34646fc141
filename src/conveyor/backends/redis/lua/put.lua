--! include head fresh rates putat
-- KEYS: meta ops fresh holes ready delayed waiters items leased lease attempts putat, then
-- the jobs keys (jobs.lua; only the first, prio, KEYS[13], is read here).
-- ARGV[5] the number of groups, then each group's size, then every payload; or, when
-- every group holds one item (each put() is one), minus the number of groups and then the
-- payloads alone.  The bound is the one stored in meta, read here, so that a bound
-- changed by any process holds for the very next put.
-- Reply, one string as the hot path parses it fastest: "<id of the first item stored (0:
-- none)> <a flag a group: 1 stored, 0 no room> <1 if published, else 0>"; the stored
-- groups' items have consecutive ids, in order.  "shutdown" when shut down.
-- A group that cannot fit blocks the groups after it, so that puts are served in the
-- order they were made.
local PIN = '$LEASED_PIN$'
local state = redis.call('HMGET', meta, 'epoch', 'shutdown', 'maxsize', 'putnext', 'snapat')
do
  local refused = admit(state[1])
  if refused then return refused end
end
if state[2] == '1' then return record('shutdown') end
-- As in asyncio, a queue is full once it holds maxsize items: 2.5 admits a third.
local maxsize = tonumber(state[3] or '0') or 0
if maxsize <= 0 or maxsize == math.huge then maxsize = 0 else maxsize = math.ceil(maxsize) end
local groups = tonumber(ARGV[5])
local sizes = nil
local pos = 6
if groups >= 0 then
  sizes = {}
  for g = 1, groups do sizes[g] = tonumber(ARGV[5 + g]) end
  pos = 6 + groups
else
  groups = -groups
end
-- Whether nothing is ready: only then may getters be waiting (see below).
local len = redis.call('LLEN', KEYS[3])
local ready = len
if len > 0 then ready = len - redis.call('SCARD', KEYS[4]) end
if ready == 0 or maxsize > 0 then
  ready = ready + redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[13])
end
local size = ready
if maxsize > 0 then size = size + redis.call('ZCARD', KEYS[6]) end
local flags, stored = {}, {}
local blocked = false
if maxsize > 0 and chained then
  -- Chained, it runs right after the batch before it: a group that batch left out for
  -- room blocks this whole batch too, so that no put overtakes a refused one.
  local kept = redis.call('HGET', ops, field .. '#' .. ((tonumber(tok) - 1) % 8))
  blocked = kept and string.find(kept, '|s%d+ [01]*0') ~= nil or false
end
for g = 1, groups do
  local n = sizes and sizes[g] or 1
  if blocked or (maxsize > 0 and size + n > maxsize) then
    if n <= maxsize then blocked = true end
    flags[g] = '0'
  else
    for i = pos, pos + n - 1 do stored[#stored + 1] = ARGV[i] end
    size = size + n
    flags[g] = '1'
  end
  pos = pos + n
end
-- Hand item `id` straight to a client whose claim found nothing (see claim.lua): leased
-- to it as its claim would have, and published on its own channel, so that its getter
-- has the item without a claim's round trip.  A client that no longer listens (the
-- publish reaches nobody) or whose wait is over is passed by.  Returns whether one took it.
local function hand_over(id, payload)
  local waiting = redis.call('HGETALL', KEYS[7])
  if #waiting == 0 then return false end
  -- Never to the putting client itself: its own getters take its items in its process.
  local own = ':inbox:' .. (string.match(ops, ':ops:([^:]*)$') or '')
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  for i = 1, #waiting, 2 do
    local inbox, spec = waiting[i], waiting[i + 1]
    local space = string.find(spec, ' ', 1, true)
    if string.sub(inbox, -#own) == own then
      space = nil  -- kept for the puts of others
    else
      redis.call('HDEL', KEYS[7], inbox)
    end
    if space and tonumber(string.sub(spec, 1, space - 1)) > now then
      local deadline = now + tonumber(string.sub(spec, space + 1))
      local delivery = redis.call('HINCRBY', meta, 'dseq', 1)
      local note = string.format('%d %d %.6f %.6f ', id, delivery, now, deadline)
      if redis.call('PUBLISH', inbox, note .. payload) > 0 then
        redis.call('HSET', KEYS[8], id, payload)
        redis.call('HSET', KEYS[11], id, 1)
        redis.call('HSET', KEYS[10], id, delivery)
        redis.call('ZADD', KEYS[9], 'NX', 'inf', PIN)
        redis.call('ZADD', KEYS[9], deadline, id)
        return true
      end
    end
  end
  return false
end
local first = 0
if #stored > 0 then
  -- One TIME a put; a snapshot of the totals before it every 15 s, a checkpoint when due
  -- (at most once a second).
  local t = redis.call('TIME')
  local clock = tonumber(t[1]) + tonumber(t[2]) / 1000000
  snapshot(clock, state[5])
  first = redis.call('HINCRBY', meta, 'seq', #stored) - #stored + 1
  if not state[4] or clock >= tonumber(state[4]) then
    checkpoint(KEYS[12], KEYS[5], clock, first, len > 0 and first - len or first)
  end
  local from = 1
  -- Only into an empty fresh list (holes included): the ids of its elements follow from
  -- their places, which an item handed over never takes.
  if ready == 0 and len == 0 and hand_over(first, stored[1]) then from = 2 end
  if from == 1 then
    bulk('RPUSH', KEYS[3], stored)
  elseif #stored > 1 then
    local rest = {}
    for i = 2, #stored do rest[i - 1] = stored[i] end
    bulk('RPUSH', KEYS[3], rest)
  end
  -- Only getters wait for puts, and a getter waits only after it found nothing ready:
  -- the put that ends that wakes them all, the puts after it need not.
  changed = ready == 0 and from <= #stored
end
return record(string.format('%d %s %d', first, table.concat(flags), changed and 1 or 0))
