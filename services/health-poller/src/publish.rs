//! Sends observations to the shard queue of the pod they are about.

use std::sync::Arc;

use corral_bus::{Bus, BusError, OutMessage};
use corral_model::{PodKey, shard::shard_of};
use corral_protocol::{Observation, ProtocolError, ShardMessage, encode, topology};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error(transparent)]
    Encode(#[from] ProtocolError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Publishes observations with the pod's shard as routing key.
#[derive(Clone)]
pub(crate) struct Publisher {
    bus: Arc<dyn Bus>,
    shards: u32,
}

impl Publisher {
    pub(crate) fn new(bus: Arc<dyn Bus>, shards: u32) -> Self {
        Self { bus, shards }
    }

    /// Publishes `what` about container `container_id` of `pod`, with publisher confirm.
    pub(crate) async fn observe(
        &self,
        pod: &PodKey,
        container_id: &str,
        what: Observation,
    ) -> Result<(), PublishError> {
        let msg = ShardMessage::Observation {
            tenant: pod.tenant.clone(),
            pod_id: pod.pod_id.clone(),
            container_id: container_id.to_string(),
            what,
        };
        let mut out = OutMessage::new(encode(&msg)?);
        corral_telemetry::inject_current(&mut out.headers);
        let key = topology::shard_routing_key(shard_of(&pod.tenant, &pod.pod_id, self.shards));
        self.bus.publish(topology::COMMANDS_EXCHANGE, &key, out).await?;
        Ok(())
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
