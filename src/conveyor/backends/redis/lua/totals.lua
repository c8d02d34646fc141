-- Read-only.  KEYS: meta.
-- Reply: {items ever put ("seq"), deliveries ever made ("dseq"), epoch ("": no queue)}.
local meta = redis.call('HMGET', KEYS[1], 'seq', 'dseq', 'epoch')
return {meta[1] or '0', meta[2] or '0', meta[3] or ''}
