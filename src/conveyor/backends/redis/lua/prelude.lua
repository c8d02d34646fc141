--! include head
-- Every changing script but put starts with this: the checks of head.lua, then the time.
do
  local refused = admit(redis.call('HGET', meta, 'epoch'))
  if refused then return refused end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- What else an item's death undoes, when the script includes jobs.lua (it sets this).
local on_dead = nil
local function to_dead(dead, deadinfo, id, reason)
  if on_dead then on_dead(id) end
  local order = redis.call('HINCRBY', meta, 'deadseq', 1)
  redis.call('ZADD', dead, order, id)
  redis.call('HSET', deadinfo, id, fmt(now) .. '|' .. reason)
end
