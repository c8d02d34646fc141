--! include prelude jobs current
-- KEYS: meta ops leased lease dead deadinfo, then the jobs keys (jobs.lua).  ARGV[5] id, [6] delivery, [7] reason.
local id = ARGV[5]
if not end_lease(KEYS[4], KEYS[3], id, ARGV[6]) then return finish({0}) end
to_dead(KEYS[5], KEYS[6], id, ARGV[7])
changed = true
return finish({1})
