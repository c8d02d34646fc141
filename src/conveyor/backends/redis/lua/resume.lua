--! include prelude
-- KEYS: meta ops.  Reply: {1}.  Wakes every waiter: blocked puts may go on.
redis.call('HDEL', meta, 'shutdown')
changed = true
return finish({1})
