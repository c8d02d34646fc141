--! include prelude jobs maintain fresh rates
-- KEYS: meta ops items ready delayed leased lease attempts dead deadinfo fresh holes
-- waiters, then the jobs keys (jobs.lua).  ARGV[5] max items, ARGV[6] lease timeout, ARGV[7] max attempts (0: none),
-- ARGV[8] the client's own channel ("": none).  A claim that finds nothing names that
-- channel in waiters, for 3 seconds, so that the next put hands its first item over there
-- (see put.lua); a claim that finds items takes the name back.
-- Reply: {status (1 ok, -1 shut down and empty), now, deadline, next due, numbers,
--         payloads, lost}: numbers is "id delivery attempts length" for each leased item,
--         all in one space-separated string, and payloads every payload joined, in order,
--         so that the client reads six strings however many items come back, not 4 a item;
--         lost counts the ids popped whose payload was gone (they went dead).
local PIN = '$LEASED_PIN$'

snapshot(now, redis.call('HGET', meta, 'snapat'))
maintain(tonumber(ARGV[7]))
local want = tonumber(ARGV[5])
local fresh, holes = KEYS[11], KEYS[12]
local head, len = fresh_head(fresh)
local gaps = len > 0 and redis.call('SCARD', holes) > 0
-- The items claims take first: those of a priority below 0, lowest first (prio zset);
-- then those of priority 0, the oldest of both kinds merged by id; then those of a
-- priority above 0.  ids[k], and payloads[k] for fresh ones; again: the ids whose
-- payloads are in items; backs and ranked: the members to take out of ready and prio.
local ids, payloads, again, backs, ranked = {}, {}, {}, {}, {}
local function take_ranked(low, high)
  local members = redis.call('ZRANGEBYSCORE', PRIO, low, high, 'LIMIT', 0, want - #ids)
  for _, member in ipairs(members) do
    local id = tostring(tonumber(member))
    ids[#ids + 1] = id
    again[#again + 1] = id
    ranked[#ranked + 1] = member
  end
end
take_ranked('-inf', '(0')
local back = {}
if #ids < want then back = redis.call('ZRANGE', KEYS[4], 0, want - #ids - 1) end
local b = 1
while #ids < want do
  local older = back[b] and tonumber(back[b])
  if len == 0 and not older then break end
  if older and (len == 0 or older <= head) then
    ids[#ids + 1] = back[b]
    again[#again + 1] = back[b]
    backs[#backs + 1] = back[b]
    b = b + 1
  else
    local count = want - #ids
    if older then count = math.min(count, older - head) end
    local popped = redis.call('LPOP', fresh, math.min(count, len))
    for j = 1, #popped do
      local id = head + j - 1
      if not (gaps and redis.call('SREM', holes, id) == 1) then
        ids[#ids + 1] = tostring(id)
        payloads[#ids] = popped[j]
      end
    end
    head = head + #popped
    len = len - #popped
  end
end
if #ids < want then take_ranked('(0', '+inf') end
local n = #ids
local inbox = ARGV[8]
if n == 0 then
  if redis.call('HGET', meta, 'shutdown') == '1' then
    return finish({-1, fmt(now), fmt(now), next_due(), '', '', 0})
  end
  if inbox ~= '' then redis.call('HSET', KEYS[13], inbox, fmt(now + 3) .. ' ' .. ARGV[6]) end
  return finish({1, fmt(now), fmt(now), next_due(), '', '', 0})
end
if inbox ~= '' then redis.call('HDEL', KEYS[13], inbox) end
changed = true
if #backs > 0 then bulk('ZREM', KEYS[4], backs) end
if #ranked > 0 then bulk('ZREM', PRIO, ranked) end
-- Claimed: a ttl is over (see maintain).  Fresh items never have one.
if #again > 0 and redis.call('ZCARD', EXPIRES) > 0 then bulk('ZREM', EXPIRES, again) end
local deadline = now + tonumber(ARGV[6])
-- Payloads and attempts of the items back from a lease (fresh ones: theirs, and none).
local stored, before = {}, {}
for i = 1, #again, 1000 do
  local chunk = {unpack(again, i, math.min(i + 999, #again))}
  local p = redis.call('HMGET', KEYS[3], unpack(chunk))
  local a = redis.call('HMGET', KEYS[8], unpack(chunk))
  for j = 1, #chunk do
    stored[chunk[j]] = p[j] or false
    before[chunk[j]] = a[j]
  end
end
local delivery = redis.call('HINCRBY', meta, 'dseq', n) - n
local numbers, blobs, lost, kept, counted, leases, scored = {}, {}, {}, {}, {}, {}, {}
for k = 1, n do
  local id = ids[k]
  local payload = payloads[k]
  local attempts = 1
  if payload then
    kept[#kept + 1] = id
    kept[#kept + 1] = payload
  else
    payload = stored[id]
    attempts = (tonumber(before[id]) or 0) + 1
  end
  counted[2 * k - 1] = id
  counted[2 * k] = attempts
  if payload then
    local d = delivery + k
    leases[#leases + 1] = id
    leases[#leases + 1] = d
    scored[#scored + 1] = deadline
    scored[#scored + 1] = id
    numbers[#numbers + 1] = id .. ' ' .. d .. ' ' .. attempts .. ' ' .. #payload
    blobs[#blobs + 1] = payload
  else
    lost[#lost + 1] = id
  end
end
if #kept > 0 then bulk('HSET', KEYS[3], kept) end
bulk('HSET', KEYS[8], counted)
if #leases > 0 then
  bulk('HSET', KEYS[7], leases)
  redis.call('ZADD', KEYS[6], 'NX', 'inf', PIN)
  bulk('ZADD', KEYS[6], scored)
end
-- An id whose payload is gone (its key deleted or evicted) is no item to hand out, and
-- must not reach a consumer as an undecodable one: it goes dead, saying why.
for _, id in ipairs(lost) do
  to_dead(KEYS[9], KEYS[10], id, 'its payload vanished from Redis (deleted or evicted)')
end
return finish({1, fmt(now), fmt(deadline), next_due(), table.concat(numbers, ' '),
  table.concat(blobs), #lost})
