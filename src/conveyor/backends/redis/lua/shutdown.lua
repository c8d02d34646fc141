--! include prelude
-- KEYS: meta ops items ready delayed attempts.  ARGV[5] "1" for immediate.
-- Reply: {items deleted}.
redis.call('HSET', meta, 'shutdown', '1')
changed = true
local deleted = 0
if ARGV[5] == '1' then
  for _, key in ipairs({KEYS[4], KEYS[5]}) do
    local ids = redis.call('ZRANGE', key, 0, -1)
    for _, id in ipairs(ids) do
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[6], id)
    end
    deleted = deleted + #ids
    redis.call('DEL', key)
  end
end
return finish({deleted})
