-- Read-only.  KEYS: dead deadinfo items attempts.  ARGV[1] limit.
-- Reply: id, payload, attempts, "failed_at|reason" for each, oldest death first.
local res = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  res[#res + 1] = id
  res[#res + 1] = redis.call('HGET', KEYS[3], id) or ''
  res[#res + 1] = redis.call('HGET', KEYS[4], id) or '0'
  res[#res + 1] = redis.call('HGET', KEYS[2], id) or '0|'
end
return res
