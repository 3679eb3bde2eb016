//! The Binder claim on Redis: one Lua script checks the documents, takes a member, judges
//! its pod's readiness and hands the pod to the claimant (see
//! [`Store::pool_claim_instance`](crate::Store::pool_claim_instance)).

use corral_model::pool::{POOL_KIND, TEMPLATE_KIND};

use super::RedisStore;
use super::codec::{encode, map_err};
use crate::{Claim, ClaimOutcome, ClaimRequest, StoreError};

/// KEYS: the pool keys, then the version hashes of the template and pool documents.
/// ARGV: claimant, cold member, template version, pool version, cap, now, pool id (the
/// documents' name), pod key prefix of the tenant, pool owner, then how a desired record
/// owned by the pool and one owned by the claimant begin ([`desired_prefix`]).
/// Returns {kind, member, owner set}: kind 1 ready, 2 warming, 3 cold, 0 full, 4 stale.
///
/// The records are read as text, not decoded (decoding two JSON documents was most of a
/// claim's time in Redis, and Redis serves claims one at a time): serde writes a record's
/// fields in declaration order, so a desired record begins with its tenant and owner and
/// ends with its generation, deletion flag and timestamps, and an observed record begins with
/// its status (the tests below pin this). Anchored at either end, a field's text cannot be
/// taken from inside the spec. A record of another shape is decoded instead, and its owner
/// left to the caller. The owner is changed by replacing the record's beginning rather than by
/// re-encoding it (cjson would renumber large integers and turn empty arrays into objects).
pub(super) const CLAIM_INSTANCE: &str = r#"
if redis.call('HGET', KEYS[9], ARGV[7]) ~= ARGV[3] or redis.call('HGET', KEYS[10], ARGV[7]) ~= ARGV[4] then
  return {4, '', 0}
end
local function podkey(m)
  local e = string.gsub(m, '%%', '%%25')
  e = string.gsub(e, ':', '%%3A')
  return ARGV[8] .. e
end
-- deleted, status, whether the observation is of the current generation; nil if unreadable.
local function fields(dj, oj)
  -- The desired record's last fields fit in 160 bytes; patterns only ever scan short text.
  local gen, del = string.match(string.sub(dj, -160), ',"generation":(%d+),"deleted":(%a+),"creation_ts":%-?%d+,"update_ts":%-?%d+}$')
  local status = string.match(oj, '^{"status":"([^"]*)",')
  local at = string.find(oj, ',"observed_generation":', 1, true)
  local ogen = at and string.match(oj, '^(%d+),', at + 23)
  if gen and status and ogen then return del == 'true', status, ogen == gen end
  local ok, d = pcall(cjson.decode, dj)
  local ok2, o = pcall(cjson.decode, oj)
  if not ok or not ok2 then return nil end
  return d.deleted == true, o.status, o.observed_generation == d.generation
end
-- 0 no pod, 1 deleted, 2 starting, 3 ready; then the key and desired JSON.
local function inspect(m)
  local key = podkey(m)
  local f = redis.call('HMGET', key, 'd', 'o')
  if not f[1] or not f[2] then return 0 end
  local deleted, status, current = fields(f[1], f[2])
  if deleted == nil then return 2 end
  if deleted then return 1 end
  if status == 'AVAILABLE' and current then return 3, key, f[1] end
  return 2, key, f[1]
end
local function hand_over(key, dj)
  if not key then return 0 end
  if string.sub(dj, 1, #ARGV[11]) == ARGV[11] then return 1 end
  if string.sub(dj, 1, #ARGV[10]) ~= ARGV[10] then return 0 end
  redis.call('HSET', key, 'd', ARGV[11] .. string.sub(dj, #ARGV[10] + 1))
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
    local st, key, dj = inspect(m)
    if st == 3 then
      take(m, true)
      return {1, m, hand_over(key, dj)}
    end
    -- Not ready after all: back to warming, for the pool-manager to promote or replace.
    redis.call('HSET', KEYS[1], m, 'warming')
    redis.call('RPUSH', KEYS[2], m)
    redis.call('HSET', KEYS[6], m, ARGV[6])
  end
end
for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local st, key, dj = inspect(m)
  if st >= 2 then
    redis.call('LREM', KEYS[2], 1, m)
    take(m, true)
    local kind = 2
    if st == 3 then kind = 1 end
    return {kind, m, hand_over(key, dj)}
  end
end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  take(ARGV[2], false)
  return {3, ARGV[2], 0}
end
return {0, '', 0}
"#;

/// How the JSON of a desired record of `tenant` owned by `owner` begins.
fn desired_prefix(tenant: &str, owner: &str) -> Result<String, StoreError> {
    Ok(format!("{{\"tenant\":{},\"owner\":{},", encode("tenant", &tenant)?, encode("owner", &owner)?))
}

impl RedisStore {
    pub(crate) async fn pool_claim_instance_impl(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
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
            .arg(desired_prefix(req.tenant, req.pool_owner)?)
            .arg(desired_prefix(req.tenant, req.claimant)?);
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

#[cfg(test)]
mod tests {
    use corral_model::{Desired, Observed, PodSpec, PodStatus, StatusRequested};

    use super::*;

    /// The claim script reads records as text (see [`CLAIM_INSTANCE`]): these are the shapes
    /// it relies on. Should one change, claims still work (the script decodes records it
    /// cannot read) but lose their speed and leave the owner to the caller.
    #[test]
    fn records_have_the_shape_the_claim_script_reads() {
        let mut spec = PodSpec { pod_id: "p".into(), image: "img".into(), ..PodSpec::default() };
        // Free-form JSON inside the spec imitating the fields read: only the record's ends count.
        let lookalike = serde_json::json!({"generation": 9, "deleted": true, "creation_ts": 0, "update_ts": 0});
        spec.volume_mounts.insert("v".into(), lookalike);
        spec.environment_variables.insert("owner".into(), "\"owner\":\"pool:web\"".into());
        let d = Desired {
            tenant: "t\"1".into(),
            owner: "pool:web".into(),
            spec,
            status_requested: StatusRequested::On,
            generation: 12,
            deleted: false,
            creation_ts: -5,
            update_ts: 1_700_000_000_000,
        };
        let dj = encode("desired state", &d).expect("encode");
        assert!(dj.starts_with(&desired_prefix("t\"1", "pool:web").expect("prefix")), "{dj}");
        let tail = ",\"generation\":12,\"deleted\":false,\"creation_ts\":-5,\"update_ts\":1700000000000}";
        assert!(dj.ends_with(tail), "{dj}");
        let widest = Desired { generation: u64::MAX, creation_ts: i64::MIN, update_ts: i64::MIN, ..d };
        let dj = encode("desired state", &widest).expect("encode");
        let last_fields = dj.rfind(",\"generation\":").map(|at| dj.len() - at);
        assert!(last_fields.is_some_and(|n| n <= 160), "the script reads the last 160 bytes: {dj}");

        let o = Observed { status: PodStatus::SpawnerSetup, observed_generation: 12, ..Observed::default() };
        let oj = encode("observed state", &o).expect("encode");
        assert!(oj.starts_with("{\"status\":\"SPAWNER SETUP\","), "{oj}");
        assert_eq!(oj.matches(",\"observed_generation\":12,").count(), 1, "{oj}");
    }
}
