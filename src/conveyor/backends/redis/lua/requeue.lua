--! include prelude jobs
-- KEYS: meta ops ready dead deadinfo attempts, then the jobs keys (jobs.lua).  A requeued
-- item keeps its priority; its key was freed when it died.  ARGV[5] "*" for all, else ids from ARGV[6].
local ids
if ARGV[5] == '*' then
  ids = redis.call('ZRANGE', KEYS[4], 0, -1)
else
  ids = {}
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[4], id) == 1 then
    redis.call('HDEL', KEYS[5], id)
    redis.call('HSET', KEYS[6], id, 0)
    make_ready(KEYS[3], id)
    moved = moved + 1
  end
end
if moved > 0 then changed = true end
return finish({moved})
