//! The figures of `spawn-storm` and their markdown summary.

use std::time::Duration;

use serde_json::json;

use super::Outcome;
use super::jupyterhub_storm::HubStorm;
use super::spawn_storm::Args;
use super::storm_corral::CorralStorm;
use super::storm_raw::RawStorm;
use crate::stack::RuntimeChoice;
use crate::stats::{TABLE_HEADER, fmt_ms};
use crate::usage::Usage;

/// Targets for the process runtime: 100 pods all AVAILABLE within this, client included…
const TARGET_ALL_S: f64 = 0.6;
const TARGET_PODS: usize = 100;
/// …and at least this many times faster than JupyterHub on the same 100.
const TARGET_SPEEDUP: f64 = 5.0;

/// Everything the scenario measured.
pub struct Measured {
    pub corral: Vec<CorralStorm>,
    pub docker: Vec<RawStorm>,
    pub jupyterhub: Option<HubStorm>,
    pub hub_version: Option<String>,
    /// Why the JupyterHub baseline did not run, when it did not.
    pub hub_missing: Option<String>,
    pub usage: Usage,
    pub wall: Duration,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn per_s(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(f64::EPSILON)
}

fn corral_ok(c: &CorralStorm) -> bool {
    !c.timed_out && c.post_failures.is_empty() && c.errors == 0 && c.verified == c.pods
}

pub fn summarise(args: &Args, m: &Measured) -> Outcome {
    let runtime = args.runtime.as_str();
    let mut md = format!(
        "N pods requested at once through `POST /v3/pods` (all N in flight together) on the {runtime} runtime \
         (in-process stack: 1 spawner, health-poller, log-collector; readiness = an HTTP answer below 500 from \
         busybox httpd). Time: first POST sent → the last pod's AVAILABLE event received by this client on \
         `corral.events` (subscribed beforehand); afterwards `GET /v3/pods` must show all N AVAILABLE.\n\n"
    );
    md.push_str(
        "| N | Corral: all AVAILABLE | spawns/s | baseline: all ready | baseline spawns/s | baseline / Corral |\n",
    );
    md.push_str("|---:|---:|---:|---:|---:|---:|\n");
    for (i, c) in m.corral.iter().enumerate() {
        let flag = if corral_ok(c) { "" } else { " (incomplete)" };
        let base =
            m.docker.get(i).map(|r| (r.all_ready, r.containers, "raw docker", r.failures.is_empty())).or_else(|| {
                m.jupyterhub
                    .as_ref()
                    .filter(|h| h.servers == c.pods)
                    .map(|h| (h.all_ready, h.servers, "jupyterhub", h.failures.is_empty()))
            });
        let (b_all, b_rate, ratio) = match base {
            Some((d, n, who, ok)) => (
                format!("{:.3} s ({who}{})", secs(d), if ok { "" } else { ", with failures" }),
                format!("{:.0}", per_s(n, d)),
                format!("{:.1}×", secs(d) / secs(c.all_available).max(f64::EPSILON)),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        md.push_str(&format!(
            "| {} | **{:.3} s**{flag} | {:.0} | {b_all} | {b_rate} | {ratio} |\n",
            c.pods,
            secs(c.all_available),
            per_s(c.pods, c.all_available)
        ));
    }
    let at_target = m.corral.iter().find(|c| c.pods == TARGET_PODS);
    let mut targets = serde_json::Map::new();
    if args.runtime == RuntimeChoice::Process {
        md.push('\n');
        match at_target {
            Some(c) => {
                let met = corral_ok(c) && secs(c.all_available) <= TARGET_ALL_S;
                targets.insert("all_available_100_met".into(), json!(met));
                md.push_str(&format!(
                    "Target: {TARGET_PODS} pods all AVAILABLE in ≤ {TARGET_ALL_S} s, client included — **{}** ({:.3} s).\n",
                    if met { "met" } else { "NOT met" },
                    secs(c.all_available)
                ));
                match (&m.jupyterhub, &m.hub_missing) {
                    (Some(h), _) if h.servers == c.pods && h.failures.is_empty() => {
                        let speedup = secs(h.all_ready) / secs(c.all_available).max(f64::EPSILON);
                        targets.insert("speedup_vs_jupyterhub".into(), json!(speedup));
                        targets.insert("speedup_met".into(), json!(speedup >= TARGET_SPEEDUP));
                        md.push_str(&format!(
                            "Target: ≥ {TARGET_SPEEDUP}× faster than JupyterHub on the same {} — **{}** ({speedup:.1}×).\n",
                            c.pods,
                            if speedup >= TARGET_SPEEDUP { "met" } else { "NOT met" }
                        ));
                    }
                    (Some(h), _) => md.push_str(&format!(
                        "Target: ≥ {TARGET_SPEEDUP}× faster than JupyterHub — not measured: JupyterHub ran {} servers with {} failures.\n",
                        h.servers,
                        h.failures.len()
                    )),
                    (None, Some(why)) => md.push_str(&format!(
                        "Target: ≥ {TARGET_SPEEDUP}× faster than JupyterHub — **not measured**: {why}.\n"
                    )),
                    (None, None) => md.push_str(&format!("Target: ≥ {TARGET_SPEEDUP}× faster than JupyterHub — not measured (baseline skipped).\n")),
                }
            }
            None => md.push_str(&format!("Targets are for N = {TARGET_PODS}: not run.\n")),
        }
    }
    if let Some(h) = &m.jupyterhub {
        md.push_str(&format!(
            "\nJupyterHub {} (SimpleLocalProcessSpawner, configurable-http-proxy, recipe of `pools.md` §7: throttles off, \
             `trust_user_provided_tokens`, `slow_spawn_timeout = 0`), {} servers: `POST /hub/api/users/{{name}}/server` all \
             at once, each followed by its `/progress` stream until `ready`. Hub CPU during the storm: {}. Stopping them \
             all took {:.1} s.\n",
            m.hub_version.as_deref().unwrap_or("?"),
            h.servers,
            h.hub_cpu_s.map_or("?".into(), |c| format!("{c:.1} s")),
            secs(h.stop)
        ));
    }
    md.push_str("\n### Distributions\n\n");
    md.push_str(TABLE_HEADER);
    for c in &m.corral {
        md.push_str(&c.post.row(&format!("Corral N={}: POST answered", c.pods)));
        md.push_str(&c.available.row(&format!("Corral N={}: AVAILABLE event", c.pods)));
        for (what, d) in &c.phases {
            md.push_str(&d.row(&format!("Corral N={}: {what}", c.pods)));
        }
    }
    for r in &m.docker {
        md.push_str(&r.ready.row(&format!("raw docker N={}: answering", r.containers)));
    }
    if let Some(h) = &m.jupyterhub {
        md.push_str(&h.post.row(&format!("jupyterhub N={}: POST answered", h.servers)));
        md.push_str(&h.ready.row(&format!("jupyterhub N={}: ready", h.servers)));
    }
    md.push_str("\nPhases come from the pods' action logs (millisecond timestamps of the stack's services). ");
    md.push_str("All times from the first request sent. Teardown (not measured above): ");
    let teardowns: Vec<String> = m
        .corral
        .iter()
        .map(|c| format!("Corral N={} {} ms", c.pods, fmt_ms(secs(c.teardown) * 1000.0)))
        .chain(
            m.docker.iter().map(|r| format!("raw docker N={} {} ms", r.containers, fmt_ms(secs(r.teardown) * 1000.0))),
        )
        .collect();
    md.push_str(&teardowns.join(", "));
    md.push_str(".\n");
    for c in m.corral.iter().filter(|c| c.restarted > 0) {
        md.push_str(&format!(
            "\nCorral N={}: {} pods had their container started more than once during the storm.\n",
            c.pods, c.restarted
        ));
        for r in &c.restart_reasons {
            md.push_str(&format!("- `{}`: {}; output kept: `{}`\n", r.pod, r.why, r.output.replace('`', "'")));
        }
    }
    for c in m.corral.iter().filter(|c| !corral_ok(c)) {
        md.push_str(&format!(
            "\nCorral N={} incomplete: {} POST failures, {} ERROR, {} verified AVAILABLE{}{}.\n",
            c.pods,
            c.post_failures.len(),
            c.errors,
            c.verified,
            if c.timed_out { ", timed out" } else { "" },
            c.post_failures.first().map(|f| format!("; first failure `{}`", f.replace('`', "'"))).unwrap_or_default()
        ));
    }
    let baseline_failure =
        m.docker.iter().flat_map(|r| &r.failures).chain(m.jupyterhub.iter().flat_map(|h| &h.failures)).next();
    if let Some(f) = baseline_failure {
        md.push_str(&format!("\nFirst baseline failure: `{}`\n", f.replace('`', "'")));
    }
    md.push('\n');
    md.push_str(&m.usage.load_note(secs(m.wall)));

    let params = json!({
        "runtime": runtime,
        "pods": args.sizes(),
        "jupyterhub_servers": args.jupyterhub_servers,
        "warmup": args.warmup,
        "timeout_s": args.timeout_s,
    });
    let results = json!({
        "corral": m.corral.iter().map(|c| json!({
            "pods": c.pods,
            "all_available_s": secs(c.all_available),
            "spawns_per_s": per_s(c.pods, c.all_available),
            "post": c.post,
            "available": c.available,
            "post_failures": c.post_failures.len(),
            "errors": c.errors,
            "verified_available": c.verified,
            "timed_out": c.timed_out,
            "teardown_s": secs(c.teardown),
            "restarted": c.restarted,
            "restart_reasons": c.restart_reasons.iter().map(|r| json!({"pod": r.pod, "reason": r.why, "output": r.output})).collect::<Vec<_>>(),
            "phases_ms": c.phases.iter().map(|(w, d)| json!({"phase": w, "summary": d})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "raw_docker": m.docker.iter().map(|r| json!({
            "containers": r.containers,
            "all_ready_s": secs(r.all_ready),
            "spawns_per_s": per_s(r.containers, r.all_ready),
            "ready": r.ready,
            "failures": r.failures.len(),
            "teardown_s": secs(r.teardown),
        })).collect::<Vec<_>>(),
        "jupyterhub": m.jupyterhub.as_ref().map(|h| json!({
            "version": m.hub_version,
            "servers": h.servers,
            "all_ready_s": secs(h.all_ready),
            "spawns_per_s": per_s(h.servers, h.all_ready),
            "post": h.post,
            "ready": h.ready,
            "failures": h.failures.len(),
            "first_failures": h.failures.iter().take(3).collect::<Vec<_>>(),
            "hub_cpu_s": h.hub_cpu_s,
            "stop_s": secs(h.stop),
        })),
        "jupyterhub_not_run": m.hub_missing,
        "targets": targets,
        "usage": m.usage,
        "wall_s": secs(m.wall),
    });
    Outcome { params, results, markdown: md }
}
