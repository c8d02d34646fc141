-- Shared by ack/retry/fail/extend: whether (id, delivery) is the current, unexpired lease.
-- KEYS[L] is the lease hash and KEYS[D] the leased zset, passed as arguments.
local function current(lease, leased, id, delivery)
  if redis.call('HGET', lease, id) ~= delivery then return false end
  local deadline = redis.call('ZSCORE', leased, id)
  return deadline ~= false and tonumber(deadline) > now
end
-- current() for many: ARGV from `first` holds id, delivery pairs.  Returns a flag each,
-- with two commands a thousand receipts instead of two a receipt.
local function current_many(lease, leased, first)
  local flags = {}
  for i = first, #ARGV, 2000 do
    local ids = {}
    for k = i, math.min(i + 1999, #ARGV), 2 do ids[#ids + 1] = ARGV[k] end
    local held = redis.call('HMGET', lease, unpack(ids))
    local deadlines = redis.call('ZMSCORE', leased, unpack(ids))
    for j = 1, #ids do
      local deadline = deadlines[j]
      flags[#flags + 1] = held[j] == ARGV[i + 2 * j - 1] and deadline ~= false
        and tonumber(deadline) > now
    end
  end
  return flags
end
-- End the lease of delivery number `delivery` of item `id` if it is current.
local function end_lease(lease, leased, id, delivery)
  if not current(lease, leased, id, delivery) then return false end
  redis.call('ZREM', leased, id)
  redis.call('HDEL', lease, id)
  return true
end
