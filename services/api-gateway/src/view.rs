//! How a pod looks to clients: the Tapis `PodResponseModel`, derived from desired and
//! observed state. Tenant, owner, logs and action logs are never shown here.

use corral_model::{Desired, Millis, Observed, PodStatus, StatusRequested};
use corral_store::PodRecord;
use serde_json::{Value, json};

/// The status clients see. Between a user's request and the spawner acting on it the
/// stored status is stale, so it shows as REQUESTED (a stop or delete shows the real status:
/// the container is still there until the spawner removes it).
pub fn displayed_status(d: &Desired, o: &Observed) -> PodStatus {
    let pending = d.status_requested != StatusRequested::Off && d.generation > o.observed_generation && !d.deleted;
    if pending { PodStatus::Requested } else { o.status }
}

/// The desired status clients see: a restart reads as ON once the spawner has taken it on.
pub fn displayed_status_requested(d: &Desired, o: &Observed) -> StatusRequested {
    match d.status_requested {
        StatusRequested::Restart if o.observed_generation >= d.generation => StatusRequested::On,
        other => other,
    }
}

/// Whether the pod is running or on its way there (as displayed).
pub fn is_active(status: PodStatus) -> bool {
    matches!(status, PodStatus::Requested | PodStatus::SpawnerSetup | PodStatus::Creating | PodStatus::Available)
}

/// Naive UTC ISO-8601 with microseconds, as Tapis (Python `datetime.isoformat()`) writes it.
pub fn iso(ms: Millis) -> Value {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return Value::Null;
    };
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
    t.format(&fmt).map_or(Value::Null, Value::String)
}

fn iso_opt(ms: Option<Millis>) -> Value {
    ms.map_or(Value::Null, iso)
}

/// The URL a networking entry is reachable at.
pub fn network_url(pod_id: &str, name: &str, pods_domain: &str) -> String {
    if name == "default" { format!("{pod_id}.{pods_domain}") } else { format!("{pod_id}-{name}.{pods_domain}") }
}

/// Overwrites every networking URL with the generated one (users cannot choose URLs).
pub fn set_network_urls(spec: &mut corral_model::PodSpec, pods_domain: &str) {
    let pod_id = spec.pod_id.clone();
    for (name, net) in &mut spec.networking {
        net.url = network_url(&pod_id, name, pods_domain);
    }
}

fn as_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The Tapis pod object.
pub fn render_pod(rec: &PodRecord, pods_domain: &str) -> Value {
    let d = &rec.desired.value;
    let o = &rec.observed.value;
    let s = &d.spec;
    let mut networking = serde_json::Map::new();
    for (name, net) in &s.networking {
        let mut entry = as_json(net);
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("url".into(), Value::String(network_url(&s.pod_id, name, pods_domain)));
        }
        networking.insert(name.clone(), entry);
    }
    let sc = &o.status_container;
    let mut pod = json!({
        "pod_id": s.pod_id,
        "image": s.image,
        "template": s.template,
        "description": s.description,
        "command": s.command,
        "arguments": s.arguments,
        "environment_variables": s.environment_variables,
        "status_requested": displayed_status_requested(d, o),
        "volume_mounts": s.volume_mounts,
        "time_to_stop_default": s.time_to_stop_default,
        "time_to_stop_instance": s.time_to_stop_instance,
        "time_to_stop_ts": iso_opt(o.time_to_stop_ts),
        "networking": networking,
        "resources": as_json(&s.resources),
        "compute_queue": s.compute_queue,
        "status": displayed_status(d, o),
        "status_container": {
            "phase": sc.phase,
            "start_time": iso_opt(sc.start_time),
            "message": sc.message,
            "exit_code": sc.exit_code,
            // How a batch run ended (succeeded, failed, timeout, infrastructure), else null.
            "reason": o.termination.as_ref().map(|t| t.reason),
            "restart_count": sc.restart_count,
        },
        "creation_ts": iso(d.creation_ts),
        "update_ts": iso(d.update_ts.max(o.update_ts)),
        "start_instance_ts": iso_opt(o.start_instance_ts),
    });
    // Corral's extension; pods without it look exactly as in Tapis.
    if let (Some(session), Some(obj)) = (&s.session, pod.as_object_mut()) {
        obj.insert("session".into(), as_json(session));
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_model::PodSpec;

    fn desired(sr: StatusRequested, generation: u64, deleted: bool) -> Desired {
        Desired {
            tenant: "dev".into(),
            owner: "alice".into(),
            spec: PodSpec { pod_id: "mypod".into(), image: "img".into(), ..PodSpec::default() },
            status_requested: sr,
            generation,
            deleted,
            creation_ts: 0,
            update_ts: 0,
        }
    }

    fn observed(status: PodStatus, observed_generation: u64) -> Observed {
        Observed { status, observed_generation, ..Observed::default() }
    }

    #[test]
    fn displayed_status_table() {
        use PodStatus::*;
        use StatusRequested::*;
        // (requested, generation, deleted, observed status, observed generation, shown)
        let cases = [
            (On, 1, false, Stopped, 0, Requested),
            (On, 1, false, Creating, 1, Creating),
            (On, 2, false, Available, 1, Requested),
            (Restart, 3, false, Available, 2, Requested),
            (Restart, 3, false, SpawnerSetup, 3, SpawnerSetup),
            (Off, 2, false, Available, 1, Available),
            (Off, 2, false, Stopped, 2, Stopped),
            (On, 2, true, Available, 1, Available),
            (On, 1, false, Error, 1, Error),
        ];
        for (sr, g, del, st, og, want) in cases {
            let got = displayed_status(&desired(sr, g, del), &observed(st, og));
            assert_eq!(got, want, "requested {sr:?} gen {g} deleted {del} observed {st:?}@{og}");
        }
    }

    #[test]
    fn restart_reads_as_on_once_taken_on() {
        let d = desired(StatusRequested::Restart, 3, false);
        assert_eq!(displayed_status_requested(&d, &observed(PodStatus::Available, 2)), StatusRequested::Restart);
        assert_eq!(displayed_status_requested(&d, &observed(PodStatus::SpawnerSetup, 3)), StatusRequested::On);
        let off = desired(StatusRequested::Off, 3, false);
        assert_eq!(displayed_status_requested(&off, &observed(PodStatus::Stopped, 3)), StatusRequested::Off);
    }

    #[test]
    fn batch_outcome_and_session_are_shown() {
        use corral_model::record::{Termination, TerminationReason};
        use corral_model::session::{SessionRun, SessionType};
        let mut d = desired(StatusRequested::On, 1, false);
        let session = SessionRun { session_type: SessionType::Batch, batch_timeout: Some(5), ..SessionRun::default() };
        d.spec.session = Some(session);
        let mut o = observed(PodStatus::Complete, 1);
        o.status_container.exit_code = Some(3);
        o.status_container.message = "batch run failed: exit code 3".into();
        o.termination =
            Some(Termination { reason: TerminationReason::Failed, message: o.status_container.message.clone() });
        let rec = corral_store::PodRecord {
            desired: corral_store::Versioned { value: d.clone(), version: 1 },
            observed: corral_store::Versioned { value: o, version: 1 },
        };
        let pod = render_pod(&rec, "pods.example");
        assert_eq!(pod["session"], json!({"session_type": "batch", "batch_timeout": 5}));
        assert_eq!(pod["status"], "COMPLETE");
        assert_eq!(pod["status_container"]["exit_code"], 3);
        assert_eq!(pod["status_container"]["reason"], "failed");
        d.spec.session = None;
        let plain = corral_store::PodRecord {
            desired: corral_store::Versioned { value: d, version: 1 },
            observed: corral_store::Versioned { value: observed(PodStatus::Available, 1), version: 1 },
        };
        let pod = render_pod(&plain, "pods.example");
        assert!(pod.get("session").is_none(), "no key without a session: {pod}");
        assert_eq!(pod["status_container"]["reason"], Value::Null);
    }

    #[test]
    fn timestamps_are_naive_utc_with_microseconds() {
        assert_eq!(iso(1_795_777_125_123), json!("2026-11-27T10:58:45.123000"));
        assert_eq!(iso_opt(None), Value::Null);
    }

    #[test]
    fn urls_follow_the_tapis_scheme() {
        assert_eq!(network_url("abc", "default", "pods.example"), "abc.pods.example");
        assert_eq!(network_url("abc", "web", "pods.example"), "abc-web.pods.example");
    }
}
