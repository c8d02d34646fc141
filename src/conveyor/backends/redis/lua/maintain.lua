-- Moves expired leases back to ready (or to dead after max_attempts), items whose ttl
-- passed unclaimed to dead ("expired"), and due retries and delays to ready.  KEYS from
-- 3: items ready delayed leased lease attempts dead deadinfo; needs jobs.lua.
local function maintain(maxatt)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[6], id)
    redis.call('HDEL', KEYS[7], id)
    local a = tonumber(redis.call('HGET', KEYS[8], id) or '0')
    if maxatt > 0 and a >= maxatt then
      to_dead(KEYS[9], KEYS[10], id, 'lease expired')
    else
      make_ready(KEYS[4], id)
    end
    changed = true
  end
  -- An item whose ttl passed while it waited (ready or delayed) goes dead, never dropped;
  -- a claim ends the ttl (the claim removes it from expires).
  local expired_ttl = redis.call('ZRANGEBYSCORE', EXPIRES, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(expired_ttl) do
    redis.call('ZREM', EXPIRES, id)
    local waiting = redis.call('ZREM', KEYS[4], id) + redis.call('ZREM', PRIO, padded(id))
      + redis.call('ZREM', KEYS[5], id)
    if waiting > 0 then
      to_dead(KEYS[9], KEYS[10], id, 'expired')
      changed = true
    end
  end
  local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[5], id)
    make_ready(KEYS[4], id)
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
