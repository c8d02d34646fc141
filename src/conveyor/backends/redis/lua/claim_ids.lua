--! include prelude fresh
-- KEYS: meta ops items fresh holes leased lease attempts.  ARGV[5] lease timeout, then ids.
-- Leases each item named that is ready and was never claimed (still in the fresh list),
-- as a claim would.  Reply: {now, deadline, numbers, payloads} as for a claim, for the
-- items leased only.
local PIN = '$LEASED_PIN$'

local deadline = now + tonumber(ARGV[5])
local head, len = fresh_head(KEYS[4])
local numbers, blobs = {}, {}
for i = 6, #ARGV do
  local id = tonumber(ARGV[i])
  if id and is_fresh(KEYS[5], head, len, id) then
    local payload = take_fresh(KEYS[4], KEYS[5], head, len, id)
    local delivery = redis.call('HINCRBY', meta, 'dseq', 1)
    redis.call('HSET', KEYS[3], id, payload)
    redis.call('HSET', KEYS[7], id, delivery)
    redis.call('ZADD', KEYS[6], 'NX', 'inf', PIN)
    redis.call('ZADD', KEYS[6], deadline, id)
    redis.call('HSET', KEYS[8], id, 1)
    numbers[#numbers + 1] = id .. ' ' .. delivery .. ' 1 ' .. #payload
    blobs[#blobs + 1] = payload
    -- Room was made: putters blocked on a full queue may go on.
    changed = true
  end
end
return finish({fmt(now), fmt(deadline), table.concat(numbers, ' '), table.concat(blobs)})
