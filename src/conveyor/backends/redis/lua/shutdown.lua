--! include prelude jobs
-- KEYS: meta ops items ready delayed attempts fresh holes, then the jobs keys (jobs.lua).  ARGV[5] "1" for immediate.
-- Reply: {items deleted}.
redis.call('HSET', meta, 'shutdown', '1')
changed = true
local deleted = 0
if ARGV[5] == '1' then
  for _, key in ipairs({KEYS[4], KEYS[5], PRIO}) do
    local ids = redis.call('ZRANGE', key, 0, -1)
    if key == PRIO then
      for i, member in ipairs(ids) do ids[i] = tostring(tonumber(member)) end
    end
    forget_jobs(ids)
    for _, id in ipairs(ids) do
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[6], id)
    end
    deleted = deleted + #ids
    redis.call('DEL', key)
  end
  -- Fresh items keep their payloads in the list itself, their ids in its places.
  local fresh = redis.call('LLEN', KEYS[7])
  if fresh > 0 then deleted = deleted + fresh - redis.call('SCARD', KEYS[8]) end
  redis.call('DEL', KEYS[7], KEYS[8])
end
return finish({deleted})
