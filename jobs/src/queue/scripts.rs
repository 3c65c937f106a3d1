//! The queue's Lua scripts (run by [`super::JobQueue`]; the unit tests run the same constants).

pub(super) const PROMOTE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return #ids
";

/// KEYS: done set, data hash, completed counter. ARGV[1]: metadata prefix, ARGV[2]: at most.
/// Every pruned id is added to the completed counter in the same step, so finished jobs are
/// counted once each (done set + counter) whenever they are pruned.
pub(super) const PRUNE: &str = r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', ARGV[1] .. ':' .. id)
end
if #ids > 0 then
  redis.call('INCRBY', KEYS[3], #ids)
end
return #ids
";

/// Deletes the metadata hashes of workers no longer registered: apalis-redis removes a dead
/// worker from the workers set when it re-enqueues its orphans, but never its metadata hash,
/// so every restart would leave one behind for good.
/// KEYS: metadata hashes found by SCAN. ARGV[1]: the workers set, ARGV[2]: the key prefix.
pub(super) const PRUNE_WORKERS: &str = r"
local removed = 0
for _, key in ipairs(KEYS) do
  local name = string.sub(key, #ARGV[2] + 1)
  if not redis.call('ZSCORE', ARGV[1], name) then
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
";

/// Enqueues encoded jobs straight onto `<q>:active` in the layout apalis-redis reads (data
/// hash entry, metadata hash, active list, wake-up signal). Skipping `<q>:scheduled` means a
/// backlog of pushes can never wedge the fetch script, and the api encodes each job once.
/// KEYS: data hash, active list, signal list. ARGV[1]: metadata prefix, then (id, json) pairs.
pub(super) const PUSH: &str = r"
local pushed = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HSETNX', KEYS[1], id, ARGV[i + 1]) == 1 then
    redis.call('HSET', ARGV[1] .. ':' .. id, 'attempts', 0, 'max_attempts', 25, 'status', 'Pending', 'idempotency_key', '')
    redis.call('RPUSH', KEYS[2], id)
    pushed = pushed + 1
  end
end
if pushed > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
end
return pushed
";

/// Re-enqueues the in-flight sets of workers that are no longer registered. apalis-redis only
/// recovers the jobs of a worker it still finds in `<q>:workers` (and removes it there in the
/// same step), so an in-flight set whose worker left the set any other way would hold its
/// jobs for good.
/// KEYS: in-flight sets found by SCAN. ARGV[1]: workers set, ARGV[2]: in-flight prefix
/// (`<q>:inflight:`), ARGV[3]: active list, ARGV[4]: signal list.
pub(super) const RECOVER_UNOWNED: &str = r"
local moved = 0
for _, key in ipairs(KEYS) do
  local name = string.sub(key, #ARGV[2] + 1)
  if not redis.call('ZSCORE', ARGV[1], name) then
    local ids = redis.call('SMEMBERS', key)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', ARGV[3], unpack(ids, i, math.min(i + 999, #ids)))
    end
    redis.call('DEL', key)
    moved = moved + #ids
  end
end
if moved > 0 then
  redis.call('DEL', ARGV[4])
  redis.call('LPUSH', ARGV[4], 1)
end
return moved
";

/// Of the given job ids (from `HKEYS <q>:data`), re-enqueues those that are nowhere: not
/// ready, scheduled, held by a registered worker, finished or dead. Every transition of a
/// job is one atomic script, so at the instant this runs a job in none of them can only be
/// stranded; nothing would ever run it again. Ids pruned meanwhile (gone from the data hash)
/// are skipped.
/// KEYS[1] data hash, [2] active list, [3] scheduled set, [4] done set, [5] dead set,
/// [6] workers set, [7] signal list. ARGV[1]: in-flight prefix, ARGV[2..]: job ids.
pub(super) const RECOVER_STRANDED: &str = r"
local workers = redis.call('ZRANGE', KEYS[6], 0, -1)
local moved = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local home = redis.call('HEXISTS', KEYS[1], id) == 0
    or redis.call('SISMEMBER', KEYS[4], id) == 1
    or redis.call('SISMEMBER', KEYS[5], id) == 1
    or redis.call('ZSCORE', KEYS[3], id)
  if not home then
    for _, w in ipairs(workers) do
      if redis.call('SISMEMBER', ARGV[1] .. w, id) == 1 then
        home = true
        break
      end
    end
  end
  if not home and not redis.call('LPOS', KEYS[2], id) then
    redis.call('RPUSH', KEYS[2], id)
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('DEL', KEYS[7])
  redis.call('LPUSH', KEYS[7], 1)
end
return moved
";

/// Moves dead jobs back to the schedule, due at `ARGV[1]` (now), with their attempts reset, so
/// apalis-redis' back-off starts over: it buries a job after 25 failed attempts (about five
/// minutes), and a click job only fails while a dependency is down, so burying it would lose
/// clicks.
/// KEYS[1] dead set, [2] scheduled set. ARGV[1]: when, ARGV[2]: metadata prefix, ARGV[3]: at most.
pub(super) const REDRIVE_DEAD: &str = r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), id)
  redis.call('HSET', ARGV[2] .. ':' .. id, 'attempts', 0, 'status', 'Pending')
end
return #ids
";
