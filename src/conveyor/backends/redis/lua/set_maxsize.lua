--! include prelude
-- KEYS: meta ops.  ARGV[5] the new bound ("0": unbounded).  Reply: {1}.  Wakes every
-- waiter: puts blocked on the old bound re-check against the new one.
redis.call('HSET', meta, 'maxsize', ARGV[5])
changed = true
return finish({1})
