-- The ready items are in two keys.  The fresh list holds the payload of every item never
-- claimed, in put (id) order; its last element is item "seq" (meta), so that the id of an
-- element follows from its place and needs no bytes.  A fresh item taken out of turn (a
-- retract, a claim by id) leaves an empty element and its id in the holes set, skipped
-- when a claim reaches it.  The ready zset holds, scored by id, the ready items that were
-- claimed before (back from a lease, a retry, the dead letters), their payloads in items.
-- Claims merge the two by id: FIFO by put order.
-- The id of the fresh list's first element, and the list's length.
local function fresh_head(fresh)
  local len = redis.call('LLEN', fresh)
  return tonumber(redis.call('HGET', meta, 'seq') or '0') - len + 1, len
end
-- How many ready items the fresh list holds.
local function fresh_count(fresh, holes)
  local len = redis.call('LLEN', fresh)
  if len == 0 then return 0 end
  return len - redis.call('SCARD', holes)
end
-- Whether fresh item `id` (a number) is in the list, unclaimed; head and len as returned
-- by fresh_head.
local function is_fresh(holes, head, len, id)
  return id >= head and id < head + len and redis.call('SISMEMBER', holes, id) == 0
end
-- Take fresh item `id` out of turn: returns its payload; it leaves a hole.  Index from the
-- tail, which is where recent items are: Redis seeks a list from the end an index names.
local function take_fresh(fresh, holes, head, len, id)
  local index = id - (head + len)
  local payload = redis.call('LINDEX', fresh, index)
  redis.call('LSET', fresh, index, '')
  redis.call('SADD', holes, id)
  return payload
end
