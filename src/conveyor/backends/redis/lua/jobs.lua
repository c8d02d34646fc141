-- The job options' keys: the last five KEYS of every script that includes this, in this
-- order: prio (zset: the ready items with a priority other than 0, scored by it, each
-- member its id zero-padded to 16 digits, so that equal scores order by id: FIFO within
-- a priority), priority (hash: id -> priority, for those items, as long as they exist),
-- dedup (hash: key -> id of the unfinished item that holds it), keyof (hash: id -> its
-- key) and expires (zset: the items put with a ttl and never claimed, scored by when
-- they expire).  Items of priority 0 stay where items always were (fresh, ready), so a
-- queue that never sees the options pays for none of them.
local JOBS = #KEYS - 4
local PRIO, PRIORITY, DEDUP, KEYOF, EXPIRES =
  KEYS[JOBS], KEYS[JOBS + 1], KEYS[JOBS + 2], KEYS[JOBS + 3], KEYS[JOBS + 4]
local function padded(id) return string.format('%016d', tonumber(id)) end
-- Make item `id` ready (back from a lease, a delay, the dead letters) where its priority
-- says: the prio zset, or `ready` scored by id.
local function make_ready(ready, id)
  local p = redis.call('HGET', PRIORITY, id)
  if p then
    redis.call('ZADD', PRIO, p, padded(id))
  else
    redis.call('ZADD', ready, id, id)
  end
end
-- Free the dedup key item `id` holds, if any: the item is done (acknowledged, dead,
-- deleted), so a put with that key stores again.
local function free_key(id)
  local key = redis.call('HGET', KEYOF, id)
  if key then
    if redis.call('HGET', DEDUP, key) == id then redis.call('HDEL', DEDUP, key) end
    redis.call('HDEL', KEYOF, id)
  end
end
-- Forget the options of the items `ids`, deleted (acknowledged, purged, retracted).
-- Commands on absent keys when no item of the queue had options (each returns at
-- once), and only commands a queue's ACL user already needed.
local function forget_jobs(ids)
  if #ids == 0 then return end
  for i = 1, #ids, 1000 do
    local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
    local keys = redis.call('HMGET', KEYOF, unpack(chunk))
    for j = 1, #chunk do
      if keys[j] then
        if redis.call('HGET', DEDUP, keys[j]) == chunk[j] then redis.call('HDEL', DEDUP, keys[j]) end
        redis.call('HDEL', KEYOF, chunk[j])
      end
    end
  end
  bulk('HDEL', PRIORITY, ids)
  if redis.call('ZCARD', EXPIRES) > 0 then bulk('ZREM', EXPIRES, ids) end
end
-- Dead items free their keys (see prelude.lua's to_dead) and their ttl ends.
on_dead = function(id)
  free_key(id)
  redis.call('ZREM', EXPIRES, id)
end
