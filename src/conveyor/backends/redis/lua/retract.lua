--! include prelude
-- KEYS: meta ops items ready attempts.  ARGV[5] number of groups, then each group's size,
-- then every id.  Deletes each group's items, all or none, if every one is still ready and
-- was never claimed (no attempts field: see the key list).  Reply: per group 1 or 0.
local groups = tonumber(ARGV[5])
local res = {}
local pos = 6 + groups
for g = 1, groups do
  local n = tonumber(ARGV[5 + g])
  local ids = {}
  local ok = true
  for i = 1, n do
    local id = ARGV[pos + i - 1]
    ids[i] = id
    if ok and (not redis.call('ZSCORE', KEYS[4], id) or redis.call('HEXISTS', KEYS[5], id) == 1)
    then
      ok = false
    end
  end
  if ok then
    bulk('ZREM', KEYS[4], ids)
    bulk('HDEL', KEYS[3], ids)
    -- Room was made: putters blocked on a full queue may go on.
    changed = true
  end
  res[g] = ok and 1 or 0
  pos = pos + n
end
return finish(res)
