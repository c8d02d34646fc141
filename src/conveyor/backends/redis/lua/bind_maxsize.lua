-- KEYS: meta.  ARGV[1] a bound to store if none is ("" to only read).  Reply: the stored
-- bound, "" for none.  Set-if-absent, so that of two openers of a new queue one wins.
if ARGV[1] ~= '' then redis.call('HSETNX', KEYS[1], 'maxsize', ARGV[1]) end
return redis.call('HGET', KEYS[1], 'maxsize') or ''
