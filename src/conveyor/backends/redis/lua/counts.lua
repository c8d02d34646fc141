-- Read-only.  KEYS: meta ready delayed leased dead.
-- Reply: {ready, delayed already due, delayed, leased, dead, shut down (0/1), maxsize ("":
-- none stored), epoch}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return {
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCOUNT', KEYS[3], '-inf', now),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCOUNT', KEYS[4], '-inf', '(inf'),
  redis.call('ZCARD', KEYS[5]),
  redis.call('HGET', KEYS[1], 'shutdown') == '1' and 1 or 0,
  redis.call('HGET', KEYS[1], 'maxsize') or '',
  redis.call('HGET', KEYS[1], 'epoch') or '',
}
