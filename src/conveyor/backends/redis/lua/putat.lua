-- Record a put's time as a checkpoint of putat (see oldest.lua), when meta's "putnext"
-- is due (put.lua, put_jobs.lua): the first id of the put, its member the time; `head`
-- is the id of the fresh list's first element.  Then drop the checkpoints no item waiting
-- needs: those whose range (up to the next checkpoint) ends at or before the oldest ready
-- item, once they are ten minutes old (an item back from a lease or a retry within that
-- finds its own).  The next one is due in a second, or in 1% of the oldest waiting item's
-- age if that is more: a slow queue with a long backlog keeps about 100 checkpoints per
-- doubling of its age, not one per item (issue #13: a queued small item costs about 7
-- bytes).
local function checkpoint(putat, ready, now, first, head)
  redis.call('ZADD', putat, first, fmt(now))
  local low = head
  local back = redis.call('ZRANGE', ready, 0, 0)
  if back[1] and tonumber(back[1]) < low then low = tonumber(back[1]) end
  local oldest = redis.call('ZRANGE', putat, 0, 8, 'WITHSCORES')
  local drop = {}
  for i = 1, #oldest - 2, 2 do
    if tonumber(oldest[i + 3]) > low or tonumber(oldest[i]) >= now - 600 then break end
    drop[#drop + 1] = oldest[i]
  end
  if #drop > 0 then redis.call('ZREM', putat, unpack(drop)) end
  local spacing = 1
  local at = redis.call('ZRANGE', putat, low, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
  if at[1] then spacing = math.max(1, (now - tonumber(at[1])) / 100) end
  redis.call('HSET', meta, 'putnext', fmt(now + spacing))
end
