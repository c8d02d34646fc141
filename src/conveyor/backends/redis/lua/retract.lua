--! include prelude fresh
-- KEYS: meta ops fresh holes.  ARGV[5] number of groups, then each group's size, then
-- every id.  Deletes each group's items, all or none, if every one is still ready and was
-- never claimed (still in the fresh list: see fresh.lua).  Reply: per group 1 or 0.
local groups = tonumber(ARGV[5])
local res = {}
local pos = 6 + groups
local head, len = fresh_head(KEYS[3])
for g = 1, groups do
  local n = tonumber(ARGV[5 + g])
  local ids = {}
  local ok = true
  for i = 1, n do
    local id = tonumber(ARGV[pos + i - 1])
    ids[i] = id
    if ok and not (id and is_fresh(KEYS[4], head, len, id)) then ok = false end
  end
  if ok then
    for _, id in ipairs(ids) do
      if redis.call('SISMEMBER', KEYS[4], id) == 0 then take_fresh(KEYS[3], KEYS[4], head, len, id) end
    end
    -- Room was made: putters blocked on a full queue may go on.
    changed = true
  end
  res[g] = ok and 1 or 0
  pos = pos + n
end
return finish(res)
