--! include prelude maintain
-- KEYS: meta ops items ready delayed leased lease attempts dead deadinfo.
-- ARGV[5] max items, ARGV[6] lease timeout, ARGV[7] max attempts (0: none).
-- Reply: {status (1 ok, -1 shut down and empty), now, deadline, next due, numbers,
--         payloads, lost}: numbers is "id delivery attempts length" for each leased item,
--         all in one space-separated string, and payloads every payload joined, in order,
--         so that the client reads six strings however many items come back, not 4 a item;
--         lost counts the ids popped whose payload was gone (they went dead).
local PIN = '$LEASED_PIN$'

maintain(tonumber(ARGV[7]))
local popped = redis.call('ZPOPMIN', KEYS[4], tonumber(ARGV[5]))
local deadline = now + tonumber(ARGV[6])
local res = {1, fmt(now), fmt(deadline), '', '', '', 0}
if #popped == 0 then
  if redis.call('HGET', meta, 'shutdown') == '1' then res[1] = -1 end
  res[4] = next_due()
  return finish(res)
end
changed = true
local n = #popped / 2
local delivery = redis.call('HINCRBY', meta, 'dseq', n) - n
local ids, leases, scored = {}, {}, {}
for i = 1, n do
  local id = popped[2 * i - 1]
  ids[i] = id
  leases[2 * i - 1] = id
  leases[2 * i] = delivery + i
  scored[2 * i - 1] = deadline
  scored[2 * i] = id
end
bulk('HSET', KEYS[7], leases)
redis.call('ZADD', KEYS[6], 'NX', 'inf', PIN)
bulk('ZADD', KEYS[6], scored)
local numbers, blobs, counted, lost = {}, {}, {}, {}
for i = 1, n, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, n))}
  local payloads = redis.call('HMGET', KEYS[3], unpack(chunk))
  local before = redis.call('HMGET', KEYS[8], unpack(chunk))
  for j = 1, #chunk do
    local id, k = chunk[j], i + j - 1
    local payload = payloads[j]
    local attempts = (tonumber(before[j]) or 0) + 1
    counted[2 * k - 1] = id
    counted[2 * k] = attempts
    if payload then
      numbers[#numbers + 1] = id .. ' ' .. (delivery + k) .. ' ' .. attempts .. ' ' .. #payload
      blobs[#blobs + 1] = payload
    else
      lost[#lost + 1] = id
    end
  end
end
bulk('HSET', KEYS[8], counted)
-- An id whose payload is gone (its key deleted or evicted) is no item to hand out, and
-- must not reach a consumer as an undecodable one: it goes dead, saying why.
for _, id in ipairs(lost) do
  redis.call('ZREM', KEYS[6], id)
  redis.call('HDEL', KEYS[7], id)
  to_dead(KEYS[9], KEYS[10], id, 'its payload vanished from Redis (deleted or evicted)')
end
res[4] = next_due()
res[5] = table.concat(numbers, ' ')
res[6] = table.concat(blobs)
res[7] = #lost
return finish(res)
