-- Read-only.  KEYS: meta.
-- Reply: {items ever put ("seq"), deliveries ever made ("dseq"), items ever acknowledged
-- ("acked"), items ever made dead ("deadseq"), the snapshots ("snaps": see rates.lua),
-- the server's time, epoch ("": no queue)}.
local t = redis.call('TIME')
local meta = redis.call('HMGET', KEYS[1], 'seq', 'dseq', 'acked', 'deadseq', 'snaps', 'epoch')
return {meta[1] or '0', meta[2] or '0', meta[3] or '0', meta[4] or '0', meta[5] or '',
  t[1] .. '.' .. string.format('%06d', tonumber(t[2])), meta[6] or ''}
