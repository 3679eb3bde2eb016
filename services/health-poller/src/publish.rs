//! Sends observations to the shard queue of the pod they are about, gathered per shard
//! (see [`corral_bus::shard_publish`]): probes passing at once leave in one message.

use std::collections::BTreeMap;
use std::sync::Arc;

use corral_bus::shard_publish::ObservationPublisher;
use corral_bus::{Bus, BusError};
use corral_model::{PodKey, shard::shard_of};
use corral_protocol::topology::HEADER_TRACEPARENT;
use corral_protocol::{Observation, PodObservation};

/// Publishes observations with the pod's shard as routing key.
#[derive(Clone)]
pub(crate) struct Publisher {
    out: ObservationPublisher,
    shards: u32,
}

impl Publisher {
    /// `max_batch`: observations for one shard in one message at most.
    pub(crate) fn new(bus: Arc<dyn Bus>, shards: u32, max_batch: usize) -> Self {
        Self { out: ObservationPublisher::new(bus, max_batch), shards }
    }

    /// Publishes `what` about container `container_id` of `pod`, with publisher confirm.
    pub(crate) async fn observe(&self, pod: &PodKey, container_id: &str, what: Observation) -> Result<(), BusError> {
        let mut headers = BTreeMap::new();
        corral_telemetry::inject_current(&mut headers);
        let observation = PodObservation {
            tenant: pod.tenant.clone(),
            pod_id: pod.pod_id.clone(),
            container_id: container_id.to_string(),
            what,
            traceparent: headers.remove(HEADER_TRACEPARENT),
        };
        self.out.publish(shard_of(&pod.tenant, &pod.pod_id, self.shards), observation).await
    }

    /// As [`Publisher::observe`], logging instead of failing: the resync repeats what
    /// could not be sent.
    pub(crate) async fn observe_or_log(&self, pod: &PodKey, container_id: &str, what: Observation) {
        let label = match &what {
            Observation::Ready => "ready",
            Observation::Exited { .. } => "exited",
            Observation::Gone => "gone",
        };
        match self.observe(pod, container_id, what).await {
            Ok(()) => tracing::debug!(%pod, container_id, observation = label, "observation published"),
            Err(e) => {
                tracing::warn!(%pod, container_id, observation = label, error = %e, "could not publish observation")
            }
        }
    }
}
