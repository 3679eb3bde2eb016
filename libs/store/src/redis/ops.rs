//! [`Store`] operations of [`RedisStore`]: one command, pipeline or script each.

use async_trait::async_trait;
use corral_model::{ActionLogEntry, Desired, Millis, Observed, PodKey};

use super::codec::{PodFields, decode, encode, map_err, pod_record};
use super::keys::{SHARD_SUFFIX, parse_shard_member, shard_member};
use super::scripts::{CONFLICT, MISSING, OK};
use super::{OUTPUT_SLACK_BYTES, RedisStore};
use crate::{
    ACTION_LOG_CAP, Claim, ClaimOutcome, ClaimRequest, OUTPUT_CAP_BYTES, PodRecord, PoolMember, Store, StoreError,
    Versioned,
};

/// Most HMGETs sent in one pipeline by `get_pods`: bounds the reply a single request
/// buffers, and how long it holds the shared connection.
const READ_BATCH: usize = 512;

/// Action-log entries as the JSON the scripts append.
fn encode_entries(entries: &[ActionLogEntry]) -> Result<Vec<String>, StoreError> {
    entries.iter().map(|e| encode("action-log entry", e)).collect()
}

impl RedisStore {
    /// Compare-and-set of one record, appending `entries` to the action log in the same
    /// script when the write succeeds.
    async fn put_versioned(
        &self,
        key: &PodKey,
        which: &str,
        fields: (&str, &str),
        json: String,
        expected: u64,
        entries: &[ActionLogEntry],
    ) -> Result<u64, StoreError> {
        let mut invocation = self.scripts.put.key(self.keys.pod(key));
        invocation.key(self.keys.actions(key)).arg(fields.0).arg(fields.1).arg(expected).arg(json).arg(ACTION_LOG_CAP);
        for entry in encode_entries(entries)? {
            invocation.arg(entry);
        }
        let (status, version): (i64, u64) = invocation.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        match status {
            OK => Ok(version),
            CONFLICT => Err(StoreError::Conflict { key: format!("{key}/{which}"), expected, found: version }),
            MISSING => Err(StoreError::NotFound(key.clone())),
            other => Err(StoreError::Corrupt(format!("unexpected compare-and-set reply {other}"))),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn create_pod(&self, desired: &Desired, observed: &Observed, shard: u32) -> Result<(), StoreError> {
        self.create_pod_logged(desired, observed, shard, &[]).await
    }

    async fn create_pod_logged(
        &self,
        desired: &Desired,
        observed: &Observed,
        shard: u32,
        entries: &[ActionLogEntry],
    ) -> Result<(), StoreError> {
        let key = desired.key();
        let mut invocation = self.scripts.create.key(self.keys.pod(&key));
        invocation
            .key(self.keys.tenant_index(&key.tenant))
            .key(self.keys.shard_index(shard))
            .key(self.keys.actions(&key))
            .key(self.keys.output(&key))
            .key(self.keys.output_instance(&key))
            .arg(encode("desired state", desired)?)
            .arg(encode("observed state", observed)?)
            .arg(&key.pod_id)
            .arg(shard_member(&key))
            .arg(shard)
            .arg(ACTION_LOG_CAP);
        for entry in encode_entries(entries)? {
            invocation.arg(entry);
        }
        let created: i64 = invocation.invoke_async(&mut self.conn.clone()).await.map_err(map_err)?;
        if created == 1 { Ok(()) } else { Err(StoreError::AlreadyExists(key)) }
    }

    async fn get_pod(&self, key: &PodKey) -> Result<Option<PodRecord>, StoreError> {
        let fields: PodFields = redis::cmd("HMGET")
            .arg(self.keys.pod(key))
            .arg(&["dv", "d", "ov", "o"])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        pod_record(&key.to_string(), fields)
    }

    async fn get_pods(&self, keys: &[PodKey]) -> Result<Vec<Option<PodRecord>>, StoreError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::with_capacity(keys.len());
        for batch in keys.chunks(READ_BATCH) {
            let mut pipe = redis::pipe();
            for key in batch {
                pipe.cmd("HMGET").arg(self.keys.pod(key)).arg(&["dv", "d", "ov", "o"]);
            }
            let rows: Vec<PodFields> = pipe.query_async(&mut conn).await.map_err(map_err)?;
            for (key, fields) in batch.iter().zip(rows) {
                out.push(pod_record(&key.to_string(), fields)?);
            }
        }
        Ok(out)
    }

    async fn pod_versions(&self, keys: &[PodKey]) -> Result<Vec<Option<(u64, u64)>>, StoreError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::with_capacity(keys.len());
        for batch in keys.chunks(READ_BATCH) {
            let mut pipe = redis::pipe();
            for key in batch {
                pipe.cmd("HMGET").arg(self.keys.pod(key)).arg(&["dv", "ov"]);
            }
            let rows: Vec<(Option<u64>, Option<u64>)> = pipe.query_async(&mut conn).await.map_err(map_err)?;
            for (key, row) in batch.iter().zip(rows) {
                out.push(match row {
                    (Some(dv), Some(ov)) => Some((dv, ov)),
                    (None, None) => None,
                    _ => return Err(StoreError::Corrupt(format!("record of {key} is missing fields"))),
                });
            }
        }
        Ok(out)
    }

    async fn put_desired(&self, desired: &Desired, expected: u64) -> Result<u64, StoreError> {
        let json = encode("desired state", desired)?;
        self.put_versioned(&desired.key(), "desired", ("dv", "d"), json, expected, &[]).await
    }

    async fn put_observed(&self, key: &PodKey, observed: &Observed, expected: u64) -> Result<u64, StoreError> {
        self.put_observed_logged(key, observed, expected, &[]).await
    }

    async fn put_observed_logged(
        &self,
        key: &PodKey,
        observed: &Observed,
        expected: u64,
        entries: &[ActionLogEntry],
    ) -> Result<u64, StoreError> {
        let json = encode("observed state", observed)?;
        self.put_versioned(key, "observed", ("ov", "o"), json, expected, entries).await
    }

    async fn purge_pod(&self, key: &PodKey, shard: u32) -> Result<bool, StoreError> {
        let existed: i64 = self
            .scripts
            .purge
            .key(self.keys.pod(key))
            .key(self.keys.tenant_index(&key.tenant))
            .key(self.keys.shard_index(shard))
            .key(self.keys.actions(key))
            .key(self.keys.output(key))
            .key(self.keys.output_instance(key))
            .arg(&key.pod_id)
            .arg(shard_member(key))
            .arg(self.keys.shard_prefix())
            .arg(SHARD_SUFFIX)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(existed == 1)
    }

    async fn list_tenant(&self, tenant: &str) -> Result<Vec<PodRecord>, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.tenant_index(tenant))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(map_err)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.cmd("HMGET").arg(self.keys.pod(&PodKey::new(tenant, id))).arg(&["dv", "d", "ov", "o"]);
        }
        let rows: Vec<PodFields> = pipe.query_async(&mut conn).await.map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, fields) in ids.iter().zip(rows) {
            // A pod purged between the two reads has no fields left: it is simply gone.
            if let Some(record) = pod_record(&format!("{tenant}/{id}"), fields)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    async fn list_shard(&self, shard: u32) -> Result<Vec<PodKey>, StoreError> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys.shard_index(shard))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        let mut keys = members
            .iter()
            .map(|m| parse_shard_member(m).ok_or_else(|| StoreError::Corrupt(format!("bad shard index member {m:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort();
        Ok(keys)
    }

    async fn append_action_log(&self, key: &PodKey, entry: &ActionLogEntry) -> Result<(), StoreError> {
        let appended: i64 = self
            .scripts
            .append_action
            .key(self.keys.pod(key))
            .key(self.keys.actions(key))
            .arg(encode("action-log entry", entry)?)
            .arg(ACTION_LOG_CAP)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        if appended == 1 { Ok(()) } else { Err(StoreError::NotFound(key.clone())) }
    }

    async fn action_log(&self, key: &PodKey) -> Result<Vec<ActionLogEntry>, StoreError> {
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(self.keys.actions(key))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        entries.iter().map(|e| decode(&format!("action-log entry of {key}"), e)).collect()
    }

    async fn append_output(&self, key: &PodKey, instance: u64, bytes: &[u8]) -> Result<(), StoreError> {
        // Only the tail of an oversized chunk could survive the cap: don't ship the rest.
        let tail = &bytes[bytes.len().saturating_sub(OUTPUT_CAP_BYTES)..];
        let appended: i64 = self
            .scripts
            .append_output
            .key(self.keys.pod(key))
            .key(self.keys.output(key))
            .key(self.keys.output_instance(key))
            .arg(instance)
            .arg(tail)
            .arg(OUTPUT_CAP_BYTES)
            .arg(OUTPUT_SLACK_BYTES)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        if appended == 1 { Ok(()) } else { Err(StoreError::NotFound(key.clone())) }
    }

    async fn output(&self, key: &PodKey) -> Result<(u64, Vec<u8>), StoreError> {
        let cap = i64::try_from(OUTPUT_CAP_BYTES).unwrap_or(i64::MAX);
        let (instance, bytes): (Option<u64>, Vec<u8>) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.keys.output_instance(key))
            .cmd("GETRANGE")
            .arg(self.keys.output(key))
            .arg(-cap)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok((instance.unwrap_or(0), bytes))
    }

    async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let held: i64 = self
            .scripts
            .acquire_lease
            .key(self.keys.lease(name))
            .arg(holder)
            // Redis rejects a zero expiry; the shortest lease it can express is 1 ms.
            .arg(ttl_ms.max(1))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(held == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _released: i64 = self
            .scripts
            .release_lease
            .key(self.keys.lease(name))
            .arg(holder)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn heartbeat(&self, group: &str, member: &str, now: Millis) -> Result<(), StoreError> {
        redis::cmd("ZADD")
            .arg(self.keys.group(group))
            .arg(now)
            .arg(member)
            .exec_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn live_members(&self, group: &str, since: Millis) -> Result<Vec<String>, StoreError> {
        let mut members: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.group(group))
            .arg(since)
            .arg("+inf")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(map_err)?;
        members.sort();
        Ok(members)
    }

    async fn leave(&self, group: &str, member: &str) -> Result<(), StoreError> {
        redis::cmd("ZREM")
            .arg(self.keys.group(group))
            .arg(member)
            .exec_async(&mut self.conn.clone())
            .await
            .map_err(map_err)
    }

    async fn put_doc(&self, kind: &str, name: &str, json: &str, expected: u64) -> Result<u64, StoreError> {
        self.put_doc_impl(kind, name, json, expected).await
    }

    async fn get_doc(&self, kind: &str, name: &str) -> Result<Option<Versioned<String>>, StoreError> {
        self.get_doc_impl(kind, name).await
    }

    async fn list_docs(&self, kind: &str) -> Result<Vec<(String, Versioned<String>)>, StoreError> {
        self.list_docs_impl(kind).await
    }

    async fn delete_doc(&self, kind: &str, name: &str) -> Result<bool, StoreError> {
        self.delete_doc_impl(kind, name).await
    }

    async fn pool_reserve(
        &self,
        pool: &str,
        member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.pool_reserve_impl(pool, member, template_version, cap, now).await
    }

    async fn pool_ready(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        self.pool_ready_impl(pool, member, now).await
    }

    async fn pool_claim(
        &self,
        pool: &str,
        claimant: &str,
        cold_member: &str,
        template_version: u64,
        cap: u32,
        now: Millis,
    ) -> Result<Claim, StoreError> {
        self.pool_claim_impl(pool, claimant, cold_member, template_version, cap, now).await
    }

    async fn pool_claim_instance(&self, req: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError> {
        self.pool_claim_instance_impl(req).await
    }

    async fn pool_withdraw(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.pool_remove_impl(pool, member, false).await
    }

    async fn pool_release(&self, pool: &str, member: &str) -> Result<bool, StoreError> {
        self.pool_remove_impl(pool, member, true).await
    }

    async fn pool_touch(&self, pool: &str, member: &str, now: Millis) -> Result<bool, StoreError> {
        self.pool_touch_impl(pool, member, now).await
    }

    async fn pool_members(&self, pool: &str) -> Result<Vec<PoolMember>, StoreError> {
        self.pool_members_impl(pool).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = redis::cmd("PING").query_async(&mut self.conn.clone()).await.map_err(map_err)?;
        if pong == "PONG" { Ok(()) } else { Err(StoreError::Corrupt(format!("unexpected ping reply {pong:?}"))) }
    }
}
