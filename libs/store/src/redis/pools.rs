//! Documents and pool members on Redis. Each pool operation is one Lua script over the
//! pool's keys, so claims from any number of gateways never hand a member out twice.

use corral_model::Millis;
use redis::Script;

use super::RedisStore;
use super::codec::map_err;
use crate::{Claim, MemberState, PoolMember, StoreError, Versioned};

/// KEYS: docs, versions. ARGV: name, json, expected. Returns {0, new} or {1, found}.
const PUT_DOC: &str = r"
local v = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if v ~= tonumber(ARGV[3]) then return {1, v} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], v + 1)
return {0, v + 1}
";

/// KEYS: the pool keys. ARGV: member, template version, cap, now.
const RESERVE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'warming')
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[7], ARGV[1], ARGV[4])
return 1
";

/// KEYS: the pool keys. ARGV: member, now.
const READY: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'warming' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'available')
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[8], ARGV[1], 1)
return 1
";

/// KEYS: the pool keys. ARGV: claimant, cold member, template version, cap, now.
/// Returns {kind, member}: 1 ready, 2 warming, 3 cold, 0 full.
const CLAIM: &str = r"
local function take(m)
  redis.call('HSET', KEYS[1], m, 'claimed')
  redis.call('HSET', KEYS[5], m, ARGV[1])
  redis.call('HSET', KEYS[6], m, ARGV[5])
  redis.call('HSET', KEYS[7], m, ARGV[5])
end
local m = redis.call('LPOP', KEYS[3])
if m then take(m) return {1, m} end
m = redis.call('LPOP', KEYS[2])
if m then take(m) return {2, m} end
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 and redis.call('HLEN', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
  take(ARGV[2])
  return {3, ARGV[2]}
end
return {0, ''}
";

/// KEYS: the pool keys. ARGV: member, '1' to remove claimed members too.
const REMOVE: &str = r"
local s = redis.call('HGET', KEYS[1], ARGV[1])
if not s then return 0 end
if s == 'claimed' and ARGV[2] ~= '1' then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('LREM', KEYS[3], 0, ARGV[1])
for i = 4, 8 do redis.call('HDEL', KEYS[i], ARGV[1]) end
return 1
";

/// KEYS: the pool keys. ARGV: member, now.
const TOUCH: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'claimed' then return 0 end
local cur = tonumber(redis.call('HGET', KEYS[7], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[7], ARGV[1], ARGV[2]) end
return 1
";

/// The compiled pool scripts.
#[derive(Debug)]
pub(crate) struct PoolScripts {
    pub(super) claim_instance: Script,
    put_doc: Script,
    reserve: Script,
    ready: Script,
    claim: Script,
    remove: Script,
    touch: Script,
}

impl PoolScripts {
    pub(crate) fn new() -> Self {
        Self {
            claim_instance: Script::new(super::claim::CLAIM_INSTANCE),
            put_doc: Script::new(PUT_DOC),
            reserve: Script::new(RESERVE),
            ready: Script::new(READY),
            claim: Script::new(CLAIM),
            remove: Script::new(REMOVE),
            touch: Script::new(TOUCH),
        }
    }
}

type Hash = std::collections::HashMap<String, String>;

impl RedisStore {
    pub(super) fn pool_invocation<'a>(&self, script: &'a Script, pool: &str) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for key in self.keys.pool(pool) {
            inv.key(key);
        }
        inv
    }

    pub(crate) async fn put_doc_impl(
        &self,
        kind: &str,
        name: &str,
        json: &str,
        expected: u64,
    ) -> Result<u64, StoreError> {
        let (status, version): (i64, u64) = self
            .pool_scripts
            .put_doc
            .key(self.keys.docs(kind))
            .key(self.keys.doc_versions(kind))
            .arg(name)
            .arg(json)
            .arg(expected)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        if status == 0 {
            Ok(version)
        } else {
            Err(StoreError::Conflict { key: format!("{kind}/{name}"), expected, found: version })
        }
    }

    pub(crate) async fn get_doc_impl(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        let (json, version): (Option<String>, Option<u64>) = redis::pipe()
            .atomic()
            .hget(self.keys.docs(kind), name)
            .hget(self.keys.doc_versions(kind), name)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(json.zip(version).map(|(value, version)| Versioned { version, value }))
    }

    pub(crate) async fn list_docs_impl(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        let (docs, versions): (Hash, Hash) = redis::pipe()
            .atomic()
            .hgetall(self.keys.docs(kind))
            .hgetall(self.keys.doc_versions(kind))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        let mut out = Vec::with_capacity(docs.len());
        for (name, value) in docs {
            let version = versions
                .get(&name)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("document {kind}/{name} has no version")))?;
            out.push((name, Versioned { version, value }));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) async fn delete_doc_impl(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        let (deleted, _): (u64, u64) = redis::pipe()
            .atomic()
            .hdel(self.keys.docs(kind), name)
            .hdel(self.keys.doc_versions(kind), name)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(deleted == 1)
    }

    pub(crate) async fn pool_reserve_impl(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut inv = self.pool_invocation(&self.pool_scripts.reserve, pool);
        inv.arg(member).arg(template_version).arg(cap).arg(now);
        let done: i64 = inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        Ok(done == 1)
    }

    pub(crate) async fn pool_ready_impl(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        let mut inv = self.pool_invocation(&self.pool_scripts.ready, pool);
        inv.arg(member).arg(now);
        let done: i64 = inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        Ok(done == 1)
    }

    pub(crate) async fn pool_claim_impl(
        &self,
        pool: &str,
        claimant: &str,
        cold_member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<Claim, StoreError> {
        let mut inv = self.pool_invocation(&self.pool_scripts.claim, pool);
        inv.arg(claimant).arg(cold_member).arg(template_version).arg(cap).arg(now);
        let (kind, member): (i64, String) = inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        match kind {
            0 => Ok(Claim::Full),
            1 => Ok(Claim::Ready(member)),
            2 => Ok(Claim::Warming(member)),
            3 => Ok(Claim::Cold(member)),
            other => Err(StoreError::Corrupt(format!("unexpected claim reply {other}"))),
        }
    }

    pub(crate) async fn pool_remove_impl(
        &self,
        pool: &str,
        member: &str,
        claimed_too: bool,
    ) -> Result<bool, StoreError> {
        let mut inv = self.pool_invocation(&self.pool_scripts.remove, pool);
        inv.arg(member).arg(if claimed_too { "1" } else { "0" });
        let done: i64 = inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        Ok(done == 1)
    }

    pub(crate) async fn pool_touch_impl(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        let mut inv = self.pool_invocation(&self.pool_scripts.touch, pool);
        inv.arg(member).arg(now);
        let done: i64 = inv.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        Ok(done == 1)
    }

    pub(crate) async fn pool_members_impl(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        let [state, _, _, tv, claimant, since, act, seen] = self.keys.pool(pool);
        let (state, tv, claimant, since, act, seen): (Hash, Hash, Hash, Hash, Hash, Hash) = redis::pipe()
            .atomic()
            .hgetall(state)
            .hgetall(tv)
            .hgetall(claimant)
            .hgetall(since)
            .hgetall(act)
            .hgetall(seen)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        let num = |h: &Hash, id: &str| -> Result<i64, StoreError> {
            h.get(id)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("pool {pool} member {id} lacks a number")))
        };
        let mut out = Vec::with_capacity(state.len());
        for (id, s) in &state {
            let Some(state) = MemberState::parse(s) else { continue };
            out.push(PoolMember {
                id: id.clone(),
                state,
                template_version: u64::try_from(num(&tv, id)?).unwrap_or(0),
                claimant: claimant.get(id).cloned(),
                since: num(&since, id)?,
                last_activity: num(&act, id)?,
                pod_seen: seen.contains_key(id),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
