//! Lua scripts: every multi-step write runs as one script so that a check and the write it
//! guards are atomic. Scripts are sent by hash (EVALSHA) and loaded on first use.

use redis::Script;

/// Status codes returned by the scripts as the first element of their reply.
pub(crate) const OK: i64 = 0;
pub(crate) const CONFLICT: i64 = 1;
pub(crate) const MISSING: i64 = 2;

/// KEYS: pod, tenant index, shard index, actions, output, output instance.
/// ARGV: desired JSON, observed JSON, pod id, shard member, shard, action-log cap, then the
/// first action-log entries (JSON), if any.
/// Returns 1 if created, 0 if the pod exists. Leftover log/output keys are cleared so a
/// re-created pod starts empty.
const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'dv', 1, 'd', ARGV[1], 'ov', 1, 'o', ARGV[2], 'shard', ARGV[5])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
if #ARGV > 6 then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, 7))
  redis.call('LTRIM', KEYS[4], -tonumber(ARGV[6]), -1)
end
return 1
";

/// KEYS: pod, actions. ARGV: version field, value field, expected version, new JSON,
/// action-log cap, then action-log entries (JSON) to append with the write, if any.
/// Returns {status, version}: the new version, or the version found on conflict.
/// Versions are compared as the decimal strings HINCRBY writes, so no float rounding.
const PUT: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return {2, 0} end
if v ~= ARGV[3] then return {1, v} end
local nv = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
if #ARGV > 5 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 6))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[5]), -1)
end
return {0, nv}
";

/// KEYS: pod, tenant index, shard index (as given), actions, output, output instance.
/// ARGV: pod id, shard member, shard key prefix, shard key suffix.
/// Also removes the pod from the shard recorded at creation, should the caller's differ;
/// that key is built here because it is only known once the record is read.
const PURGE: &str = r"
local recorded = redis.call('HGET', KEYS[1], 'shard')
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
if recorded then
  redis.call('SREM', ARGV[3] .. recorded .. ARGV[4], ARGV[2])
end
redis.call('DEL', KEYS[4], KEYS[5], KEYS[6])
return existed
";

/// KEYS: pod, actions. ARGV: entry JSON, cap. Returns 0 if the pod does not exist.
const APPEND_ACTION: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
return 1
";

/// KEYS: pod, output, output instance. ARGV: instance, bytes, cap, slack.
/// Returns 0 if the pod does not exist. Instances are compared as decimal strings (length,
/// then digits) to stay exact beyond 2^53. The kept bytes may exceed the cap by `slack` so
/// that a full buffer is cut once per `slack` bytes rather than copied on every append;
/// readers only ever see the last `cap` bytes.
const APPEND_OUTPUT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local cur = redis.call('GET', KEYS[3])
if cur and older(ARGV[1], cur) then return 1 end
if not cur or older(cur, ARGV[1]) then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[1])
end
local len = redis.call('APPEND', KEYS[2], ARGV[2])
local cap = tonumber(ARGV[3])
if len > cap + tonumber(ARGV[4]) then
  redis.call('SET', KEYS[2], redis.call('GETRANGE', KEYS[2], -cap, -1))
end
return 1
";

/// KEYS: lease. ARGV: holder, ttl ms. Returns 1 if `holder` now holds the lease.
const ACQUIRE_LEASE: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// KEYS: lease. ARGV: holder.
const RELEASE_LEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The compiled (hashed) scripts, shared by every clone of a store.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) put: Script,
    pub(crate) purge: Script,
    pub(crate) append_action: Script,
    pub(crate) append_output: Script,
    pub(crate) acquire_lease: Script,
    pub(crate) release_lease: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self {
            create: Script::new(CREATE),
            put: Script::new(PUT),
            purge: Script::new(PURGE),
            append_action: Script::new(APPEND_ACTION),
            append_output: Script::new(APPEND_OUTPUT),
            acquire_lease: Script::new(ACQUIRE_LEASE),
            release_lease: Script::new(RELEASE_LEASE),
        }
    }
}
