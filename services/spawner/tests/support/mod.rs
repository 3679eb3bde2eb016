//! What the spawner's test binaries share.

use std::collections::BTreeMap;

use corral_model::{Desired, Networking, PodSpec, Protocol, StatusRequested};

/// A pod of tenant `dev`, owned by alice, switched on at generation 1: image `img`, and one
/// networking entry on port 8000 speaking `protocol` (none without one).
pub fn desired(pod_id: &str, protocol: Option<Protocol>) -> Desired {
    let mut spec = PodSpec { pod_id: pod_id.into(), image: "img".into(), ..PodSpec::default() };
    spec.networking = protocol
        .map(|protocol| ("default".into(), Networking { protocol, port: 8000, ..Networking::default() }))
        .into_iter()
        .collect::<BTreeMap<_, _>>();
    Desired {
        tenant: "dev".into(),
        owner: "alice".into(),
        spec,
        status_requested: StatusRequested::On,
        generation: 1,
        deleted: false,
        creation_ts: 0,
        update_ts: 0,
    }
}
