//! Translation of a [`ContainerSpec`] into Docker's create-container body.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum};

use super::{LABEL_NAMESPACE, LABEL_PORT_PREFIX};
use crate::{ContainerSpec, LABEL_GENERATION, LABEL_INSTANCE, LABEL_MANAGED, LABEL_POD, LABEL_TENANT};

/// Docker's CPU unit: one CPU is 10^9 nano-CPUs, so one milli-CPU is 10^6.
const NANO_CPUS_PER_MILLI: i64 = 1_000_000;
const BYTES_PER_MIB: i64 = 1024 * 1024;

/// Labels every managed container carries: they make it adoptable by a new owner and
/// scope `list`/`events` to one namespace.
pub(super) fn labels(namespace: &str, spec: &ContainerSpec) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        (LABEL_NAMESPACE.to_owned(), namespace.to_owned()),
        (LABEL_TENANT.to_owned(), spec.pod.tenant.clone()),
        (LABEL_POD.to_owned(), spec.pod.pod_id.clone()),
        (LABEL_GENERATION.to_owned(), spec.generation.to_string()),
        (LABEL_INSTANCE.to_owned(), spec.instance.to_string()),
    ]);
    for port in &spec.ports {
        labels.insert(format!("{LABEL_PORT_PREFIX}{}", port.name), port.container_port.to_string());
    }
    labels
}

/// Docker's key for a TCP container port.
pub(super) fn port_key(container_port: u16) -> String {
    format!("{container_port}/tcp")
}

/// The full create body: resource limits, hardening and loopback-only ephemeral port
/// publishing. Never binds host paths (in particular never the Docker socket).
pub(super) fn create_body(
    namespace: &str,
    host_ip: &str,
    network: Option<&str>,
    spec: &ContainerSpec,
) -> ContainerCreateBody {
    // Several networking entries may share one container port; Docker wants it once.
    let container_ports: BTreeMap<u16, ()> = spec.ports.iter().map(|p| (p.container_port, ())).collect();
    let exposed: Vec<String> = container_ports.keys().map(|p| port_key(*p)).collect();
    let bindings: HashMap<String, Option<Vec<PortBinding>>> = container_ports
        .keys()
        .map(|p| {
            // An empty host port asks Docker for an ephemeral one.
            let binding = PortBinding { host_ip: Some(host_ip.to_owned()), host_port: Some(String::new()) };
            (port_key(*p), Some(vec![binding]))
        })
        .collect();
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let memory = (spec.mem_limit_mib > 0).then(|| i64::from(spec.mem_limit_mib) * BYTES_PER_MIB);

    let host_config = HostConfig {
        nano_cpus: (spec.cpu_limit_millis > 0).then(|| i64::from(spec.cpu_limit_millis) * NANO_CPUS_PER_MILLI),
        memory,
        // Equal to memory: no swap on top of the limit.
        memory_swap: memory,
        pids_limit: (spec.pids_limit > 0).then_some(spec.pids_limit),
        privileged: Some(false),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        binds: None,
        mounts: None,
        auto_remove: Some(false),
        restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
        network_mode: network.map(str::to_owned),
        port_bindings: Some(bindings),
        publish_all_ports: Some(false),
        ..Default::default()
    };

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        // Kubernetes semantics, as in Tapis: `command` replaces the entrypoint, `args` the cmd.
        entrypoint: spec.command.clone(),
        cmd: spec.args.clone(),
        env: Some(env),
        labels: Some(labels(namespace, spec)),
        exposed_ports: Some(exposed),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use corral_model::PodKey;

    use super::*;
    use crate::PortSpec;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            pod: PodKey::new("t1", "p1"),
            generation: 3,
            instance: 7,
            image: "img".into(),
            command: Some(vec!["httpd".into()]),
            args: None,
            env: BTreeMap::from([("A".into(), "1".into())]),
            cpu_limit_millis: 500,
            mem_limit_mib: 64,
            pids_limit: 100,
            ports: vec![
                PortSpec { name: "default".into(), container_port: 8000 },
                PortSpec { name: "alt".into(), container_port: 8000 },
            ],
            files: Vec::new(),
        }
    }

    #[test]
    fn limits_hardening_and_ports_are_set() {
        let body = create_body("ns", "127.0.0.1", None, &spec());
        let hc = body.host_config.expect("host config");
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory, Some(64 * 1024 * 1024));
        assert_eq!(hc.memory_swap, hc.memory);
        assert_eq!(hc.pids_limit, Some(100));
        assert_eq!(hc.privileged, Some(false));
        assert_eq!(hc.binds, None);
        assert_eq!(body.exposed_ports, Some(vec!["8000/tcp".to_owned()]));
        let bindings = hc.port_bindings.expect("bindings");
        let b = &bindings["8000/tcp"].as_ref().expect("binding")[0];
        assert_eq!(b.host_ip.as_deref(), Some("127.0.0.1"));
        let labels = body.labels.expect("labels");
        assert_eq!(labels["corral.port.default"], "8000");
        assert_eq!(labels["corral.port.alt"], "8000");
        assert_eq!(labels["corral.namespace"], "ns");
        assert_eq!(labels[LABEL_GENERATION], "3");
        assert_eq!(body.entrypoint, Some(vec!["httpd".to_owned()]));
        assert_eq!(body.env, Some(vec!["A=1".to_owned()]));
    }

    #[test]
    fn zero_limits_mean_unlimited() {
        let mut s = spec();
        s.cpu_limit_millis = 0;
        s.mem_limit_mib = 0;
        s.pids_limit = 0;
        let hc = create_body("ns", "127.0.0.1", None, &s).host_config.expect("host config");
        assert_eq!((hc.nano_cpus, hc.memory, hc.memory_swap, hc.pids_limit), (None, None, None, None));
    }
}
