--! include head fresh
-- KEYS: meta ops fresh holes ready delayed.  ARGV[5] the number of groups, then each
-- group's size, then every payload; or, when every group holds one item (each put() is
-- one), minus the number of groups and then the payloads alone.  The bound is the one
-- stored in meta, read here, so that a bound changed by any process holds for the very
-- next put.
-- Reply, one string as the hot path parses it fastest: "<id of the first item stored (0:
-- none)> <a flag a group: 1 stored, 0 no room> <1 if published, else 0>"; the stored
-- groups' items have consecutive ids, in order.  "shutdown" when shut down.
-- A group that cannot fit blocks the groups after it, so that puts are served in the
-- order they were made.
local state = redis.call('HMGET', meta, 'epoch', 'shutdown', 'maxsize')
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
local ready = fresh_count(KEYS[3], KEYS[4])
if ready == 0 or maxsize > 0 then ready = ready + redis.call('ZCARD', KEYS[5]) end
local size = ready
if maxsize > 0 then size = size + redis.call('ZCARD', KEYS[6]) end
local flags, stored = {}, {}
local blocked = false
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
local first = 0
if #stored > 0 then
  first = redis.call('HINCRBY', meta, 'seq', #stored) - #stored + 1
  bulk('RPUSH', KEYS[3], stored)
  -- Only getters wait for puts, and a getter waits only after it found nothing ready:
  -- the put that ends that wakes them all, the puts after it need not.
  changed = ready == 0
end
return record(string.format('%d %s %d', first, table.concat(flags), changed and 1 or 0))
