//! Driving the JupyterHub baseline over its REST API as in `pools.md` §7.6: users created in
//! bulk, then N `POST /hub/api/users/{name}/server` at once, each followed by reading its
//! `/server/progress` stream until the event saying it is ready.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::jupyterhub::Hub;
use crate::progress::Progress;
use crate::stats::{Latencies, Summary};

/// Poll interval while waiting for stopped servers.
const STOP_POLL: Duration = Duration::from_millis(200);

/// What one storm on the hub measured.
#[derive(Debug, Clone)]
pub struct HubStorm {
    pub servers: usize,
    /// POST answered (202 with `slow_spawn_timeout = 0`).
    pub post: Summary,
    /// POST sent → the progress stream said ready.
    pub ready: Summary,
    /// First POST sent → last server ready.
    pub all_ready: Duration,
    pub failures: Vec<String>,
    /// CPU seconds of the hub process during the storm.
    pub hub_cpu_s: Option<f64>,
    /// DELETE of every server → none left.
    pub stop: Duration,
}

fn auth(hub: &Hub) -> String {
    format!("token {}", hub.token)
}

/// Creates the users (`POST /hub/api/users`).
pub async fn create_users(hub: &Hub, http: &reqwest::Client, names: &[String]) -> anyhow::Result<()> {
    let resp = http
        .post(format!("{}/users", hub.api))
        .header("Authorization", auth(hub))
        .json(&json!({ "usernames": names }))
        .send()
        .await
        .context("creating hub users")?;
    let status = resp.status();
    anyhow::ensure!(
        status.is_success(),
        "creating hub users answered {status}: {}",
        resp.text().await.unwrap_or_default()
    );
    Ok(())
}

/// One server: POST, then its progress stream until ready. Returns (POST answered, ready),
/// both from `t0`.
async fn spawn_one(hub: &Hub, http: &reqwest::Client, name: &str, t0: Instant) -> anyhow::Result<(Duration, Duration)> {
    let resp = http
        .post(format!("{}/users/{name}/server", hub.api))
        .header("Authorization", auth(hub))
        .send()
        .await
        .with_context(|| format!("POST server of {name}"))?;
    let posted = t0.elapsed();
    let status = resp.status();
    anyhow::ensure!(status.is_success(), "POST server of {name} answered {status}");
    let mut stream = http
        .get(format!("{}/users/{name}/server/progress", hub.api))
        .header("Authorization", auth(hub))
        .send()
        .await
        .with_context(|| format!("progress of {name}"))?;
    let mut buf = String::new();
    while let Some(chunk) = stream.chunk().await.with_context(|| format!("reading the progress of {name}"))? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find('\n') {
            let line: String = buf.drain(..=end).collect();
            match progress_event(&line) {
                Some(Settled::Ready) => return Ok((posted, t0.elapsed())),
                Some(Settled::Failed(m)) => anyhow::bail!("server of {name} failed: {m}"),
                None => {}
            }
        }
    }
    anyhow::bail!("the progress stream of {name} ended before the server was ready")
}

#[derive(Debug, PartialEq)]
enum Settled {
    Ready,
    Failed(String),
}

/// A server-sent `data: {...}` line of the progress stream, if it settles the spawn.
fn progress_event(line: &str) -> Option<Settled> {
    let v: Value = serde_json::from_str(line.trim().strip_prefix("data:")?.trim()).ok()?;
    if v["ready"] == true {
        Some(Settled::Ready)
    } else if v["failed"] == true {
        Some(Settled::Failed(v["message"].as_str().unwrap_or_default().to_string()))
    } else {
        None
    }
}

/// Starts a server for every user at once and waits for all of them to be ready.
pub async fn storm(
    hub: &Hub,
    http: &reqwest::Client,
    names: &[String],
    timeout: Duration,
    progress: Progress,
) -> anyhow::Result<HubStorm> {
    let bar = progress.bar(names.len() as u64, "jupyterhub");
    let cpu_before = hub.pid().and_then(crate::procmem::cpu_seconds);
    let t0 = Instant::now();
    let bar_ref = &bar;
    let all = futures::future::join_all(names.iter().map(|n| async move {
        let r = tokio::time::timeout(timeout, spawn_one(hub, http, n, t0)).await;
        bar_ref.inc(1);
        match r {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("server of {n} not ready within {timeout:?}")),
        }
    }))
    .await;
    let all_ready = t0.elapsed();
    let hub_cpu_s = match (cpu_before, hub.pid().and_then(crate::procmem::cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    bar.finish_and_clear();
    let (mut post, mut ready, mut failures) = (Latencies::new(), Latencies::new(), Vec::new());
    for r in all {
        match r {
            Ok((p, d)) => {
                post.record(p);
                ready.record(d);
            }
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    let stop = stop_all(hub, http, names, timeout).await?;
    Ok(HubStorm {
        servers: names.len(),
        post: post.summary(),
        ready: ready.summary(),
        all_ready,
        failures,
        hub_cpu_s,
        stop,
    })
}

/// Stops every user's server and waits until the hub reports none running.
async fn stop_all(hub: &Hub, http: &reqwest::Client, names: &[String], timeout: Duration) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    futures::future::join_all(names.iter().map(|n| async move {
        let r = http.delete(format!("{}/users/{n}/server", hub.api)).header("Authorization", auth(hub)).send().await;
        if let Err(e) = r {
            tracing::warn!(user = n, error = %e, "stopping a hub server failed");
        }
    }))
    .await;
    loop {
        let users: Value = http
            .get(format!("{}/users", hub.api))
            .header("Authorization", auth(hub))
            .send()
            .await
            .context("listing hub users")?
            .json()
            .await
            .context("reading hub users")?;
        // A server being stopped still has `pending: "stop"`.
        let running = users
            .as_array()
            .map_or(0, |us| us.iter().filter(|u| u["server"].is_string() || u["pending"].is_string()).count());
        if running == 0 {
            return Ok(t0.elapsed());
        }
        anyhow::ensure!(t0.elapsed() < timeout, "{running} hub servers still running after {timeout:?}");
        tokio::time::sleep(STOP_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_events_are_recognised() {
        assert_eq!(progress_event(r#"data: {"progress": 100, "ready": true, "message": "x"}"#), Some(Settled::Ready));
        assert_eq!(
            progress_event(r#"data: {"progress": 100, "failed": true, "message": "boom"}"#),
            Some(Settled::Failed("boom".into()))
        );
        assert_eq!(progress_event(r#"data: {"progress": 50, "message": "Spawning server..."}"#), None);
        assert_eq!(progress_event(": keepalive"), None);
        assert_eq!(progress_event(""), None);
    }
}
