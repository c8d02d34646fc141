--! include prelude jobs
-- KEYS: meta ops items attempts ready delayed dead deadinfo fresh holes, then the jobs
-- keys (jobs.lua).  ARGV[5] "ready"
-- (the items waiting: ready and delayed), "dead" (the dead letters) or "all" (both).
-- Reply: {items deleted}.  Leased items stay: the consumers holding them settle them.
-- A layout that keeps never-claimed items in the fresh list (payloads in the list, ids
-- by place, holes taken out of turn) loses them with it; where it does not exist, it
-- counts nothing.
local which = ARGV[5]
local zsets = {}
if which ~= 'dead' then zsets = {KEYS[5], KEYS[6]} end
if which ~= 'ready' then zsets[#zsets + 1] = KEYS[7] end
if which ~= 'dead' then zsets[#zsets + 1] = PRIO end
local deleted = 0
for _, key in ipairs(zsets) do
  local ids = redis.call('ZRANGE', key, 0, -1)
  if key == PRIO then
    for i, member in ipairs(ids) do ids[i] = tostring(tonumber(member)) end
  end
  bulk('HDEL', KEYS[3], ids)
  bulk('HDEL', KEYS[4], ids)
  forget_jobs(ids)
  deleted = deleted + #ids
  redis.call('DEL', key)
end
if which ~= 'ready' then redis.call('DEL', KEYS[8]) end
if which ~= 'dead' then
  local len = redis.call('LLEN', KEYS[9])
  if len > 0 then deleted = deleted + len - redis.call('SCARD', KEYS[10]) end
  redis.call('DEL', KEYS[9], KEYS[10])
end
-- Putters waiting for room and join() waiting for the last item both care.
if deleted > 0 then changed = true end
return finish({deleted})
