--! include prelude
-- KEYS: meta ops items ready leased lease attempts.  ARGV[5] lease timeout, then ids.
-- Leases each item named that is ready and was never claimed (no attempts field), as a
-- claim would.  Reply: {now, deadline, numbers, payloads} as for a claim, for the items
-- leased only.
local PIN = '$LEASED_PIN$'

local deadline = now + tonumber(ARGV[5])
local numbers, blobs = {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  if redis.call('ZSCORE', KEYS[4], id) and redis.call('HEXISTS', KEYS[7], id) == 0 then
    redis.call('ZREM', KEYS[4], id)
    local delivery = redis.call('HINCRBY', meta, 'dseq', 1)
    redis.call('HSET', KEYS[6], id, delivery)
    redis.call('ZADD', KEYS[5], 'NX', 'inf', PIN)
    redis.call('ZADD', KEYS[5], deadline, id)
    redis.call('HSET', KEYS[7], id, 1)
    local payload = redis.call('HGET', KEYS[3], id) or ''
    numbers[#numbers + 1] = id .. ' ' .. delivery .. ' 1 ' .. #payload
    blobs[#blobs + 1] = payload
    -- Room was made: putters blocked on a full queue may go on.
    changed = true
  end
end
return finish({fmt(now), fmt(deadline), table.concat(numbers, ' '), table.concat(blobs)})
