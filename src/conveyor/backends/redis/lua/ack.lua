--! include prelude jobs current fresh
-- KEYS: meta ops items leased lease attempts ready delayed fresh holes putat, then the
-- jobs keys (jobs.lua): an acknowledged item frees its dedup key.
-- ARGV from 5: id, delivery pairs.
-- Reply: {flags}, one character a receipt: "1" acknowledged, "0" not (a stale receipt).
-- A receipt repeated in one batch is current each time: only its first flag says True.
local flags, done, seen = {}, {}, {}
for k, ok in ipairs(current_many(KEYS[5], KEYS[4], 5)) do
  local id = ARGV[2 * k + 3]
  if ok and not seen[id] then
    seen[id] = true
    done[#done + 1] = id
    flags[k] = '1'
  else
    flags[k] = '0'
  end
end
if #done > 0 then
  redis.call('HINCRBY', meta, 'acked', #done)
  bulk('ZREM', KEYS[4], done)
  bulk('HDEL', KEYS[5], done)
  bulk('HDEL', KEYS[3], done)
  bulk('HDEL', KEYS[6], done)
  forget_jobs(done)
  -- Only join() waits for acknowledgements, and only for the last one.  The last lease
  -- gone, the pin goes too: an idle queue keeps no leased key.
  local idle = redis.call('ZCOUNT', KEYS[4], '-inf', '(inf') == 0
  if idle then redis.call('DEL', KEYS[4]) end
  changed = idle and redis.call('ZCARD', KEYS[7]) == 0
    and redis.call('ZCARD', KEYS[8]) == 0 and fresh_count(KEYS[9], KEYS[10]) == 0
    and redis.call('ZCARD', PRIO) == 0
  -- Nothing unfinished: no item needs a put time, and an idle queue keeps no key of
  -- them (the next put records its own).
  if changed then
    redis.call('DEL', KEYS[11])
    redis.call('HDEL', meta, 'putnext')
  end
end
return finish({table.concat(flags)})
