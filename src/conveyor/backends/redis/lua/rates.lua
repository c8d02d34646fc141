-- The queue's totals and their snapshots, for rates over the last minute (see totals.lua).
-- meta: "acked" (items ever acknowledged; with "deadseq", the items ever made dead, the
-- items finished), "snapat" (time of the last snapshot) and "snaps" (snapshots, oldest
-- first, "<time> <items put> <items finished>" joined by ","): put and claim take one, at
-- most every 15 seconds, keeping the newest one at least a minute old and those after it.
local function snapshot(now, last)
  if last and now - tonumber(last) < 15 then return end
  local m = redis.call('HMGET', meta, 'seq', 'acked', 'deadseq', 'snaps')
  local kept, from = {}, 1
  for entry in string.gmatch(m[4] or '', '[^,]+') do
    kept[#kept + 1] = entry
    if tonumber(string.match(entry, '^[^ ]+')) <= now - 60 then from = #kept end
  end
  local out = {}
  for i = from, #kept do out[#out + 1] = kept[i] end
  out[#out + 1] = string.format('%.6f %d %d', now, tonumber(m[1] or '0'),
    tonumber(m[2] or '0') + tonumber(m[3] or '0'))
  redis.call('HSET', meta, 'snapat', fmt(now), 'snaps', table.concat(out, ','))
end
