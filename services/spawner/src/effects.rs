//! How actions reach the runtime and the bus: building the container spec from desired
//! state, spawning, and announcing status changes.

use corral_model::machine::Event;
use corral_model::secrets::{CREDENTIALS_KIND, StoredCredentials, has_placeholder};
use corral_model::{Desired, Endpoint, Observed, PodKey, Protocol};
use corral_protocol::{PodEvent, ProbeKind, topology};
use corral_runtime::{ContainerInfo, ContainerSpec, PortSpec};

use crate::shard::Context;

/// The container for instance `instance` of the pod.
pub fn container_spec(ctx: &Context, d: &Desired, instance: u64) -> ContainerSpec {
    let ports = d
        .spec
        .networking
        .iter()
        .filter_map(|(name, n)| u16::try_from(n.port).ok().map(|p| PortSpec { name: name.clone(), container_port: p }))
        .collect();
    ContainerSpec {
        pod: d.key(),
        generation: d.generation,
        instance,
        image: d.spec.image.clone(),
        command: d.spec.command.clone(),
        args: d.spec.arguments.clone(),
        env: d.spec.environment_variables.clone(),
        cpu_limit_millis: d.spec.resources.cpu_limit,
        mem_limit_mib: d.spec.resources.mem_limit,
        pids_limit: ctx.cfg.runtime.pids_limit,
        ports,
        files: Vec::new(),
    }
}

/// Spawns the instance and reports the outcome as a machine event.
pub async fn spawn(ctx: &Context, d: &Desired, instance: u64) -> Event {
    let mut spec = container_spec(ctx, d, instance);
    crate::bootstrap::wrap(d, &mut spec);
    if let Err(reason) = fill_credentials(ctx, d, &mut spec).await {
        return Event::SpawnFailed { instance, reason };
    }
    if let Err(reason) = crate::git::prepare(ctx, d, &mut spec).await {
        return Event::SpawnFailed { instance, reason };
    }
    match ctx.deps.runtime.spawn(&spec).await {
        Ok(info) => Event::Spawned { instance, endpoint: endpoint_of(&info), container_id: info.id },
        Err(e) => Event::SpawnFailed { instance, reason: e.to_string() },
    }
}

/// Substitutes the pod's credentials for their placeholders in the container's environment,
/// command and arguments. Only here, at the last step, do the values exist outside the store:
/// the pod's records and every message keep the placeholders.
async fn fill_credentials(ctx: &Context, d: &Desired, spec: &mut ContainerSpec) -> Result<(), String> {
    let has = has_placeholder;
    let needed = spec.env.values().any(|v| has(v))
        || spec.command.iter().flatten().any(|v| has(v))
        || spec.args.iter().flatten().any(|v| has(v));
    if !needed {
        return Ok(());
    }
    let key = d.key();
    let name = format!("{}/{}", key.tenant, key.pod_id);
    let doc = ctx
        .deps
        .store
        .get_doc(CREDENTIALS_KIND, &name)
        .await
        .map_err(|e| format!("cannot read the pod's credentials: {e}"))?;
    let stored: Option<StoredCredentials> = doc.and_then(|d| serde_json::from_str(&d.value).ok());
    let creds = stored
        .filter(|s| s.creation_ts == d.creation_ts)
        .map(|s| s.credentials)
        .ok_or_else(|| "the pod's credentials are not available yet".to_string())?;
    for v in spec.env.values_mut() {
        *v = creds.substitute(v);
    }
    for list in [spec.command.as_mut(), spec.args.as_mut()].into_iter().flatten() {
        for v in list.iter_mut() {
            *v = creds.substitute(v);
        }
    }
    Ok(())
}

/// Where the default networking port answers.
pub fn endpoint_of(info: &ContainerInfo) -> Option<Endpoint> {
    info.ports.get("default").map(|hp| Endpoint { host: hp.host.clone(), port: hp.port })
}

pub fn probe_kind(d: &Desired) -> Option<ProbeKind> {
    d.spec.default_port().and_then(|(_, n)| match n.protocol {
        Protocol::Http => Some(ProbeKind::Http),
        Protocol::Tcp | Protocol::Postgres => Some(ProbeKind::Tcp),
        Protocol::LocalOnly => None,
    })
}

/// Announces the pod's status on the events exchange (health-poller probes CREATING pods),
/// gathered with other events for the same tenant and status when the publisher is busy.
pub async fn publish_event(ctx: &Context, key: &PodKey, d: &Desired, obs: &Observed) {
    let mut headers = std::collections::BTreeMap::new();
    corral_telemetry::inject_current(&mut headers);
    let ev = PodEvent {
        tenant: key.tenant.clone(),
        pod_id: key.pod_id.clone(),
        status: obs.status,
        generation: d.generation,
        instance: obs.instance,
        container_id: obs.container_id.clone(),
        endpoint: obs.endpoint.clone(),
        probe: probe_kind(d),
        ts: ctx.now(),
        message: obs.status_container.message.clone(),
        traceparent: headers.remove(topology::HEADER_TRACEPARENT),
    };
    if let Err(e) = ctx.events.publish(ev).await {
        tracing::warn!(pod = %key, error = %e, "cannot publish the pod event");
    }
}
