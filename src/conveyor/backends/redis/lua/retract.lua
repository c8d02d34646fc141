--! include prelude jobs fresh
-- KEYS: meta ops fresh holes items attempts ready delayed, then the jobs keys (jobs.lua).
-- ARGV[5] number of groups, then each group's size, then every id.  Deletes each group's
-- items, all or none, if every one is still waiting and was never claimed: still in the
-- fresh list (see fresh.lua), or, put with job options, in ready, prio or delayed with
-- no attempts counted (a claim counts one).  Reply: per group 1 or 0.
local groups = tonumber(ARGV[5])
local res = {}
local pos = 6 + groups
local head, len = fresh_head(KEYS[3])
-- Whether item `id` (a number), put with options, waits and was never claimed.
local function waiting(id)
  if redis.call('HGET', KEYS[6], id) then return false end
  return (redis.call('ZSCORE', KEYS[7], id) or redis.call('ZSCORE', PRIO, padded(id))
    or redis.call('ZSCORE', KEYS[8], id)) ~= false
end
for g = 1, groups do
  local n = tonumber(ARGV[5 + g])
  local ids = {}
  local ok = true
  for i = 1, n do
    local id = tonumber(ARGV[pos + i - 1])
    ids[i] = id
    if ok and not (id and (is_fresh(KEYS[4], head, len, id) or waiting(id))) then ok = false end
  end
  if ok then
    for _, id in ipairs(ids) do
      if is_fresh(KEYS[4], head, len, id) then
        take_fresh(KEYS[3], KEYS[4], head, len, id)
      elseif redis.call('HDEL', KEYS[5], id) == 1 then
        redis.call('ZREM', KEYS[7], id)
        redis.call('ZREM', PRIO, padded(id))
        redis.call('ZREM', KEYS[8], id)
        forget_jobs({tostring(id)})
      end
    end
    -- Room was made: putters blocked on a full queue may go on.
    changed = true
  end
  res[g] = ok and 1 or 0
  pos = pos + n
end
return finish(res)
