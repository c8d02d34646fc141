-- KEYS: meta leased probe.  ARGV[1] format, ARGV[2] the channel, ARGV[3] a new epoch.
-- Reply: {the stored format, set to ARGV[1] if there was none or if it was format 1 (see
-- below), or "old server" when Redis lacks ZMSCORE (6.2), which acknowledgements use;
-- the queue's epoch, set to ARGV[3] if it
-- had none (a new queue, or one of a conveyor that wrote none); then the name of every
-- command the scripts run that this user may not run}.  Scripts run with the user's ACL
-- permissions, so each command is tried once, harmlessly, on a probe key of the queue's
-- own (left absent): a missing permission is named at open, not met by the first put.
local denied = "can't run this command"
local missing = {}
local zm = redis.pcall('ZMSCORE', KEYS[2], '0')
if type(zm) == 'table' and zm.err then
  if not string.find(zm.err, denied, 1, true) then return {'old server', ''} end
  missing[1] = 'zmscore'
end
local p = KEYS[3]
local probes = {
  {'TIME'}, {'HSET', p, 'x', '1'}, {'EXPIRE', p, 60}, {'HSETNX', p, 'y', '1'},
  {'HGET', p, 'x'}, {'HMGET', p, 'x'}, {'HGETALL', p}, {'HINCRBY', p, 'x', 0},
  {'HDEL', p, 'x', 'y'}, {'ZADD', p, 1, 'm'}, {'ZCARD', p}, {'ZCOUNT', p, '-inf', '+inf'},
  {'ZRANGE', p, 0, 0}, {'ZRANGEBYSCORE', p, '-inf', '+inf'}, {'ZSCORE', p, 'm'},
  {'ZREM', p, 'm'}, {'DEL', p}, {'RPUSH', p, 'x'}, {'LLEN', p},
  {'LINDEX', p, 0}, {'LSET', p, 0, 'y'}, {'LPOP', p, 1}, {'DEL', p}, {'SADD', p, 'x'},
  {'SCARD', p}, {'SISMEMBER', p, 'x'}, {'SREM', p, 'x'}, {'DEL', p},
  {'PUBLISH', ARGV[2], '~probe'},
}
local named = {}
for _, probe in ipairs(probes) do
  local r = redis.pcall(unpack(probe))
  if type(r) == 'table' and r.err and string.find(r.err, denied, 1, true)
    and not named[probe[1]] then
    named[probe[1]] = true
    missing[#missing + 1] = string.lower(probe[1])
  end
end
if #missing > 0 then return {'', '', unpack(missing)} end
local stored = ARGV[1]
if redis.call('HSETNX', KEYS[1], 'format', ARGV[1]) == 0 then
  stored = redis.call('HGET', KEYS[1], 'format')
end
-- Format 2 added the fresh list (and its holes) for items never claimed; format 1 kept
-- them in the ready zset with their payloads in items, where format 2 keeps the items that
-- come back, and claims merge both by id.  A format-1 queue is therefore a format-2 queue
-- with an empty fresh list: its items stay where they are, in order, and only the mark
-- changes, here, atomically with the check.  Format 3 added the job options' keys (see
-- jobs.lua), which an older conveyor would not read (it would claim no item of another
-- priority, free no dedup key); a format-2 queue is a format-3 queue without them.
if (stored == '1' or stored == '2') and ARGV[1] == '3' then
  redis.call('HSET', KEYS[1], 'format', ARGV[1])
  stored = ARGV[1]
end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[3])
return {stored, redis.call('HGET', KEYS[1], 'epoch')}
