-- Moves expired leases back to ready (or to dead after max_attempts) and due retries to
-- ready.  KEYS from 3: items ready delayed leased lease attempts dead deadinfo.
local function maintain(maxatt)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[6], id)
    redis.call('HDEL', KEYS[7], id)
    local a = tonumber(redis.call('HGET', KEYS[8], id) or '0')
    if maxatt > 0 and a >= maxatt then
      to_dead(KEYS[9], KEYS[10], id, 'lease expired')
    else
      redis.call('ZADD', KEYS[4], id, id)
    end
    changed = true
  end
  local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[5], id)
    redis.call('ZADD', KEYS[4], id, id)
    changed = true
  end
end
local function next_due()
  local best = ''
  for _, key in ipairs({KEYS[5], KEYS[6]}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] and first[2] ~= 'inf' and (best == '' or tonumber(first[2]) < tonumber(best))
    then
      best = first[2]
    end
  end
  return best
end
