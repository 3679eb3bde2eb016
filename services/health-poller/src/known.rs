//! What the resync knows of each pod between passes. A pass asks the store only for the
//! versions of every pod (a few bytes each) and re-reads the records of the pods whose
//! versions moved, so a fleet of settled pods costs no record reads or decoding.

use std::collections::HashMap;

use corral_model::{Endpoint, PodKey, PodStatus, Protocol};
use corral_protocol::ProbeKind;
use corral_store::{PodRecord, Store, StoreError};

/// Pods asked about per store call.
const BATCH: usize = 256;

/// The part of a pod's records the resync looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    /// (desired, observed) versions this summary was taken at.
    versions: (u64, u64),
    pub status: PodStatus,
    pub container_id: Option<String>,
    pub endpoint: Option<Endpoint>,
    /// How the default port is probed; `None` when it is not (no port, or `local_only`).
    pub probe: Option<ProbeKind>,
}

impl Summary {
    fn of(record: &PodRecord) -> Self {
        let observed = &record.observed.value;
        Self {
            versions: (record.desired.version, record.observed.version),
            status: observed.status,
            container_id: observed.container_id.clone(),
            endpoint: observed.endpoint.clone(),
            probe: record.desired.value.spec.default_port().and_then(|(_, net)| probe_kind(net.protocol)),
        }
    }
}

/// How a pod's default port is probed; `local_only` ports are not reachable from here.
pub(crate) fn probe_kind(protocol: Protocol) -> Option<ProbeKind> {
    match protocol {
        Protocol::Http => Some(ProbeKind::Http),
        Protocol::Tcp | Protocol::Postgres => Some(ProbeKind::Tcp),
        Protocol::LocalOnly => None,
    }
}

/// Summaries of the pods seen by the last pass.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pods: HashMap<PodKey, Summary>,
    /// Records read by the last [`Known::refresh`] (for tests and logs).
    pub last_reads: usize,
}

impl Known {
    /// Brings the summaries up to date with the store: every pod of `shards` shards, pods
    /// gone from the store forgotten. On error the summaries taken so far are kept.
    pub(crate) async fn refresh(&mut self, store: &dyn Store, shards: u32) -> Result<(), StoreError> {
        let mut fresh = HashMap::with_capacity(self.pods.len());
        let mut reads = 0;
        let outcome = self.refresh_into(store, shards, &mut fresh, &mut reads).await;
        self.last_reads = reads;
        match outcome {
            Ok(()) => self.pods = fresh,
            Err(_) => self.pods.extend(fresh),
        }
        outcome
    }

    async fn refresh_into(
        &mut self,
        store: &dyn Store,
        shards: u32,
        fresh: &mut HashMap<PodKey, Summary>,
        reads: &mut usize,
    ) -> Result<(), StoreError> {
        for shard in 0..shards {
            let keys = store.list_shard(shard).await?;
            for batch in keys.chunks(BATCH) {
                let versions = store.pod_versions(batch).await?;
                let mut stale = Vec::new();
                for (key, versions) in batch.iter().zip(versions) {
                    // A pod purged since the listing is simply gone.
                    let Some(versions) = versions else { continue };
                    match self.pods.remove(key) {
                        Some(known) if known.versions == versions => {
                            fresh.insert(key.clone(), known);
                        }
                        _ => stale.push(key.clone()),
                    }
                }
                if stale.is_empty() {
                    continue;
                }
                *reads += stale.len();
                let records = store.get_pods(&stale).await?;
                for (key, record) in stale.into_iter().zip(records) {
                    if let Some(record) = record {
                        fresh.insert(key, Summary::of(&record));
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PodKey, &Summary)> {
        self.pods.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use corral_model::{Desired, Networking, Observed, PodSpec, StatusRequested};
    use corral_testkit::MemoryStore;

    use super::*;

    fn desired(pod_id: &str, protocol: Protocol) -> Desired {
        let mut spec = PodSpec { pod_id: pod_id.into(), image: "img".into(), ..PodSpec::default() };
        spec.networking = BTreeMap::from([("default".into(), Networking { protocol, ..Networking::default() })]);
        Desired {
            tenant: "t".into(),
            owner: "o".into(),
            spec,
            status_requested: StatusRequested::On,
            generation: 1,
            deleted: false,
            creation_ts: 0,
            update_ts: 0,
        }
    }

    #[test]
    fn probe_kinds_follow_the_default_port_protocol() {
        assert_eq!(probe_kind(Protocol::Http), Some(ProbeKind::Http));
        assert_eq!(probe_kind(Protocol::Tcp), Some(ProbeKind::Tcp));
        assert_eq!(probe_kind(Protocol::Postgres), Some(ProbeKind::Tcp));
        assert_eq!(probe_kind(Protocol::LocalOnly), None);
    }

    #[tokio::test]
    async fn only_changed_pods_are_read_again_and_purged_ones_are_forgotten() {
        let store = MemoryStore::new();
        let a = desired("a", Protocol::Http);
        let b = desired("b", Protocol::LocalOnly);
        store.create_pod(&a, &Observed::default(), 0).await.expect("create a");
        store.create_pod(&b, &Observed::default(), 1).await.expect("create b");
        let mut known = Known::default();

        known.refresh(&store, 2).await.expect("first pass");
        assert_eq!((known.len(), known.last_reads), (2, 2), "everything is read once");
        let summary = known.pods.get(&a.key()).expect("a is known");
        assert_eq!((summary.status, summary.probe), (PodStatus::Stopped, Some(ProbeKind::Http)));

        known.refresh(&store, 2).await.expect("second pass");
        assert_eq!((known.len(), known.last_reads), (2, 0), "nothing changed, nothing read");

        let running = Observed { status: PodStatus::Available, container_id: Some("c1".into()), ..Observed::default() };
        store.put_observed(&b.key(), &running, 1).await.expect("b runs");
        known.refresh(&store, 2).await.expect("third pass");
        assert_eq!(known.last_reads, 1, "only b is read again");
        let summary = known.pods.get(&b.key()).expect("b is known");
        assert_eq!((summary.status, summary.container_id.as_deref()), (PodStatus::Available, Some("c1")));

        let mut a2 = a.clone();
        a2.spec.networking.clear();
        store.put_desired(&a2, 1).await.expect("a changes its spec");
        store.purge_pod(&b.key(), 1).await.expect("b is purged");
        known.refresh(&store, 2).await.expect("fourth pass");
        assert_eq!((known.len(), known.last_reads), (1, 1), "a read again, b forgotten");
        assert_eq!(known.pods.get(&a.key()).expect("a is known").probe, None, "desired changes are seen");
    }
}
