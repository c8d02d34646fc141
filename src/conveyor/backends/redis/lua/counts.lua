-- Read-only.  KEYS: meta ready delayed leased dead fresh holes prio (jobs.lua's).
-- Reply: {ready, delayed already due, delayed, leased, dead, shut down (0/1), maxsize ("":
-- none stored), epoch}.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local fresh = redis.call('LLEN', KEYS[6])
if fresh > 0 then fresh = fresh - redis.call('SCARD', KEYS[7]) end
return {
  redis.call('ZCARD', KEYS[2]) + fresh + redis.call('ZCARD', KEYS[8]),
  redis.call('ZCOUNT', KEYS[3], '-inf', now),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCOUNT', KEYS[4], '-inf', '(inf'),
  redis.call('ZCARD', KEYS[5]),
  redis.call('HGET', KEYS[1], 'shutdown') == '1' and 1 or 0,
  redis.call('HGET', KEYS[1], 'maxsize') or '',
  redis.call('HGET', KEYS[1], 'epoch') or '',
}
