//! The Binder claim on Redis: one Lua script checks the documents, takes a member, judges
//! its pod's readiness and hands the pod to the claimant (see
//! [`Store::pool_claim_instance`](crate::Store::pool_claim_instance)).

use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};

use super::RedisStore;
use super::codec::{encode, map_err};
use crate::{Claim, ClaimOutcome, ClaimRequest, StoreError};

/// KEYS: the pool keys, then the version hashes of the template and pool documents.
/// ARGV: claimant, cold member, template version, pool version, cap, now, pool id (the
/// documents' name), pod key prefix of the tenant, pool owner, then the owner field as
/// stored (`"owner":<pool owner>`) and as it becomes (`"owner":<claimant>`).
/// Returns {kind, member, owner set}: kind 1 ready, 2 warming, 3 cold, 0 full, 4 stale.
///
/// The owner is changed by replacing the field's exact text rather than by re-encoding the
/// record (cjson would renumber large integers and turn empty arrays into objects); the
/// decoded record must say the pool owns the pod, and the text must occur exactly once, so
/// no other field can be hit. Otherwise the owner is left to the caller.
pub(super) const CLAIM_INSTANCE: &str = r"
if redis.call('HGET', KEYS[9], ARGV[7]) ~= ARGV[3] or redis.call('HGET', KEYS[10], ARGV[7]) ~= ARGV[4] then
  return {4, '', 0}
end
local function podkey(m)
  local e = string.gsub(m, '%%', '%%25')
  e = string.gsub(e, ':', '%%3A')
  return ARGV[8] .. e
end
-- 0 no pod, 1 deleted, 2 starting, 3 ready; then the key, desired JSON and decoded desired.
local function inspect(m)
  local key = podkey(m)
  local f = redis.call('HMGET', key, 'd', 'o')
  if not f[1] or not f[2] then return 0 end
  local ok, d = pcall(cjson.decode, f[1])
  local ok2, o = pcall(cjson.decode, f[2])
  if not ok or not ok2 then return 2 end
  if d.deleted == true then return 1 end
  if o.status == 'AVAILABLE' and o.observed_generation == d.generation then return 3, key, f[1], d end
  return 2, key, f[1], d
end
local function hand_over(key, dj, d)
  if not key then return 0 end
  if d.owner == ARGV[1] then return 1 end
  if d.owner ~= ARGV[9] then return 0 end
  local s, e = string.find(dj, ARGV[10], 1, true)
  if not s or string.find(dj, ARGV[10], e + 1, true) then return 0 end
  redis.call('HSET', key, 'd', string.sub(dj, 1, s - 1) .. ARGV[11] .. string.sub(dj, e + 1))
  redis.call('HINCRBY', key, 'dv', 1)
  return 1
end
local function take(m, seen)
  redis.call('HSET', KEYS[1], m, 'claimed')
  redis.call('HSET', KEYS[5], m, ARGV[1])
  redis.call('HSET', KEYS[6], m, ARGV[6])
  redis.call('HSET', KEYS[7], m, ARGV[6])
  if seen then redis.call('HSET', KEYS[8], m, 1) end
end
while true do
  local m = redis.call('LPOP', KEYS[3])
  if not m then break end
  if redis.call('HGET', KEYS[1], m) == 'available' then
    local st, key, dj, d = inspect(m)
    if st == 3 then
      take(m, true)
      return {1, m, hand_over(key, dj, d)}
    end
    -- Not ready after all: back to warming, for the pool-manager to promote or replace.
    redis.call('HSET', KEYS[1], m, 'warming')
    redis.call('RPUSH', KEYS[2], m)
    redis.call('HSET', KEYS[6], m, ARGV[6])
  end
end
for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local st, key, dj, d = inspect(m)
  if st >= 2 then
    redis.call('LREM', KEYS[2], 1, m)
    take(m, true)
    local kind = 2
    if st == 3 then kind = 1 end
    return {kind, m, hand_over(key, dj, d)}
  end
end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  take(ARGV[2], false)
  return {3, ARGV[2], 0}
end
return {0, '', 0}
";

impl RedisStore {
    pub(crate) async fn pool_claim_instance_impl(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        let owner_field = |owner: &str| encode("owner", &owner).map(|json| format!("\"owner\":{json}"));
        let mut inv = self.pool_invocation(&self.pool_scripts.claim_instance, req.pool);
        inv.key(self.keys.doc_versions(TEMPLATE_KIND))
            .key(self.keys.doc_versions(POOL_KIND))
            .arg(req.claimant)
            .arg(req.cold_member)
            .arg(req.template_version)
            .arg(req.pool_version)
            .arg(req.cap)
            .arg(req.now)
            .arg(req.pool)
            .arg(self.keys.pod_prefix(req.tenant))
            .arg(req.pool_owner)
            .arg(owner_field(req.pool_owner)?)
            .arg(owner_field(req.claimant)?);
        let (kind, member, owner_set): (i64, String, i64) =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        let owner_set = owner_set == 1;
        let claim = match kind {
            0 => Claim::Full,
            1 => Claim::Ready(member),
            2 => Claim::Warming(member),
            3 => Claim::Cold(member),
            4 => return Ok(ClaimOutcome::Stale),
            other => return Err(StoreError::Corrupt(format!("unexpected claim reply {other}"))),
        };
        Ok(ClaimOutcome::Claimed { claim, owner_set })
    }
}
