//! Mapping of Docker's answers (inspect, events, errors) onto the runtime's types.

use std::collections::{BTreeMap, HashMap};

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, EventMessage, PortMap};
use corral_model::{Millis, PodKey};

use super::{LABEL_NAMESPACE, LABEL_PORT_PREFIX, create::port_key};
use crate::{
    ContainerInfo, ContainerState, HostPort, LABEL_GENERATION, LABEL_INSTANCE, LABEL_MANAGED, LABEL_POD, LABEL_TENANT,
    RuntimeError, RuntimeEvent,
};

/// HTTP status of a Docker error answer, if it was one.
pub(super) fn status_of(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Generic mapping; callers handle the statuses that mean something specific to them first.
pub(super) fn map_err(context: &str, err: DockerError) -> RuntimeError {
    match err {
        DockerError::DockerResponseServerError { status_code: 404, message } => {
            RuntimeError::NotFound(format!("{context}: {message}"))
        }
        DockerError::DockerResponseServerError { status_code: 400, message } => {
            RuntimeError::Invalid(format!("{context}: {message}"))
        }
        DockerError::DockerResponseServerError { status_code, message } => {
            RuntimeError::Other(format!("{context}: docker answered {status_code}: {message}"))
        }
        DockerError::IOError { .. }
        | DockerError::HyperResponseError { .. }
        | DockerError::HyperLegacyError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::SocketNotFoundError(_) => RuntimeError::Unavailable(format!("{context}: {err}")),
        other => RuntimeError::Other(format!("{context}: {other}")),
    }
}

/// Pod identity from a container's labels; None when it is not a Corral container of `namespace`.
fn identity(labels: &HashMap<String, String>, namespace: &str) -> Option<(PodKey, u64, u64)> {
    if labels.get(LABEL_MANAGED).map(String::as_str) != Some("true")
        || labels.get(LABEL_NAMESPACE).map(String::as_str) != Some(namespace)
    {
        return None;
    }
    let pod = PodKey::new(labels.get(LABEL_TENANT)?.clone(), labels.get(LABEL_POD)?.clone());
    let generation = labels.get(LABEL_GENERATION)?.parse().ok()?;
    let instance = labels.get(LABEL_INSTANCE)?.parse().ok()?;
    Some((pod, generation, instance))
}

/// Docker reports "0001-01-01T00:00:00Z" for a container that never started.
fn parse_started_at(raw: Option<&str>) -> Option<Millis> {
    let parsed = time::OffsetDateTime::parse(raw?, &time::format_description::well_known::Rfc3339).ok()?;
    let millis = i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()?;
    (millis > 0).then_some(millis)
}

/// Networking entry name → published host address, using the `corral.port.<name>` labels.
fn published_ports(
    labels: &HashMap<String, String>,
    ports: Option<&PortMap>,
    host_ip: &str,
) -> BTreeMap<String, HostPort> {
    let Some(ports) = ports else {
        return BTreeMap::new();
    };
    labels
        .iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix(LABEL_PORT_PREFIX)?;
            let container_port: u16 = value.parse().ok()?;
            let binding = ports.get(&port_key(container_port))?.as_ref()?.first()?;
            let port: u16 = binding.host_port.as_deref()?.parse().ok()?;
            let host = match binding.host_ip.as_deref() {
                // A wildcard bind answers on the configured address too.
                None | Some("" | "0.0.0.0" | "::") => host_ip.to_owned(),
                Some(ip) => ip.to_owned(),
            };
            Some((name.to_owned(), HostPort { host, port }))
        })
        .collect()
}

/// ContainerInfo for an inspected container, or None when it is not ours.
pub(super) fn info_from_inspect(
    resp: &ContainerInspectResponse,
    namespace: &str,
    host_ip: &str,
) -> Option<ContainerInfo> {
    let labels = resp.config.as_ref()?.labels.as_ref()?;
    let (pod, generation, instance) = identity(labels, namespace)?;
    let state = resp.state.as_ref();
    let exit_code = state.and_then(|s| s.exit_code);
    let container_state = match state.and_then(|s| s.status) {
        Some(
            ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::PAUSED | ContainerStateStatusEnum::RESTARTING,
        ) => ContainerState::Running,
        Some(
            ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::REMOVING
            | ContainerStateStatusEnum::STOPPING,
        ) => ContainerState::Exited(exit_code),
        Some(ContainerStateStatusEnum::CREATED | ContainerStateStatusEnum::EMPTY) | None => ContainerState::Created,
    };
    let ports = published_ports(labels, resp.network_settings.as_ref().and_then(|n| n.ports.as_ref()), host_ip);
    Some(ContainerInfo {
        id: resp.id.clone()?,
        pod,
        generation,
        instance,
        state: container_state,
        ports,
        started_at: parse_started_at(state.and_then(|s| s.started_at.as_deref())),
    })
}

/// Human reason for an exit code: codes above 128 mean "killed by signal code-128".
pub(crate) fn exit_reason(exit_code: Option<i64>) -> String {
    match exit_code {
        Some(code) if (129..=128 + 64).contains(&code) => format!("killed (signal {})", code - 128),
        _ => "exited".to_owned(),
    }
}

/// RuntimeEvent for a container event of `namespace` (start, die, destroy); None otherwise.
pub(super) fn event_from_message(msg: &EventMessage, namespace: &str) -> Option<RuntimeEvent> {
    let actor = msg.actor.as_ref()?;
    let id = actor.id.clone()?;
    let attributes = actor.attributes.as_ref()?;
    let (pod, _, _) = identity(attributes, namespace)?;
    match msg.action.as_deref()? {
        "start" => Some(RuntimeEvent::Started { id, pod }),
        "die" => {
            let exit_code = attributes.get("exitCode").and_then(|c| c.parse().ok());
            Some(RuntimeEvent::Exited { id, pod, exit_code, reason: exit_reason(exit_code) })
        }
        "destroy" => Some(RuntimeEvent::Removed { id, pod }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, ContainerState as DockerState, EventActor, NetworkSettings, PortBinding};

    use super::*;

    fn labels() -> HashMap<String, String> {
        HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_NAMESPACE.to_owned(), "ns".to_owned()),
            (LABEL_TENANT.to_owned(), "t".to_owned()),
            (LABEL_POD.to_owned(), "p".to_owned()),
            (LABEL_GENERATION.to_owned(), "2".to_owned()),
            (LABEL_INSTANCE.to_owned(), "5".to_owned()),
            ("corral.port.default".to_owned(), "8000".to_owned()),
        ])
    }

    fn inspect(status: ContainerStateStatusEnum, exit_code: i64) -> ContainerInspectResponse {
        let binding = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some("49153".into()) };
        ContainerInspectResponse {
            id: Some("abc".into()),
            config: Some(ContainerConfig { labels: Some(labels()), ..Default::default() }),
            state: Some(DockerState {
                status: Some(status),
                exit_code: Some(exit_code),
                started_at: Some("2024-01-02T03:04:05.678901234Z".into()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(HashMap::from([("8000/tcp".to_owned(), Some(vec![binding]))])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn running_container_maps_ports_and_start_time() {
        let info = info_from_inspect(&inspect(ContainerStateStatusEnum::RUNNING, 0), "ns", "127.0.0.1").expect("ours");
        assert_eq!(info.state, ContainerState::Running);
        assert_eq!(info.pod, PodKey::new("t", "p"));
        assert_eq!((info.generation, info.instance), (2, 5));
        assert_eq!(info.ports["default"], HostPort { host: "127.0.0.1".into(), port: 49153 });
        assert_eq!(info.started_at, Some(1_704_164_645_678));
    }

    #[test]
    fn exited_container_keeps_exit_code_and_other_namespaces_are_invisible() {
        let resp = inspect(ContainerStateStatusEnum::EXITED, 137);
        let info = info_from_inspect(&resp, "ns", "127.0.0.1").expect("ours");
        assert_eq!(info.state, ContainerState::Exited(Some(137)));
        assert!(info_from_inspect(&resp, "other", "127.0.0.1").is_none());
    }

    #[test]
    fn never_started_has_no_start_time() {
        assert_eq!(parse_started_at(Some("0001-01-01T00:00:00Z")), None);
    }

    #[test]
    fn die_event_carries_exit_code_and_reason() {
        let mut attributes = labels();
        attributes.insert("exitCode".into(), "137".into());
        let msg = EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor { id: Some("abc".into()), attributes: Some(attributes) }),
            ..Default::default()
        };
        assert_eq!(
            event_from_message(&msg, "ns"),
            Some(RuntimeEvent::Exited {
                id: "abc".into(),
                pod: PodKey::new("t", "p"),
                exit_code: Some(137),
                reason: "killed (signal 9)".into()
            })
        );
        assert_eq!(event_from_message(&msg, "other"), None);
        assert_eq!(exit_reason(Some(3)), "exited");
    }
}
