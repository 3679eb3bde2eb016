//! A Binder pool driven through the HTTP API, as an operator and its users would: register a
//! template, size its pool, claim instances, give them back, read the pool's counts.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;

use crate::progress::Progress;
use crate::stack::Target;

/// How often the fill wait reads the pool's counts.
const FILL_POLL: Duration = Duration::from_millis(200);

/// `GET /api/pools/{template}`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub running: u64,
    pub available: u64,
    pub warming: u64,
    pub claimed: u64,
    pub size: u64,
}

/// How a claim was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 200 with a `location`: a pre-warmed instance.
    Ready,
    /// 200 without `location`: a warming member or a cold start.
    NotReady,
    /// 429: the pool is empty and at its cap.
    Full,
    /// Anything else (or a transport failure).
    Failed,
}

/// One claim as its client saw it.
#[derive(Debug, Clone)]
pub struct ClaimResult {
    pub latency: Duration,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// The pool of one template.
pub struct Pool<'a> {
    pub target: &'a Target,
    pub template: String,
}

impl Pool<'_> {
    /// Registers the template: `image` running the shell `command` (Binder placeholders
    /// allowed), serving HTTP on `port`; claimed instances idle for `cull_timeout_s` are
    /// culled (and so given back to the pool).
    pub async fn register(&self, image: &str, command: &str, port: u16, cull_timeout_s: u64) -> anyhow::Result<()> {
        let body = json!({
            "name": self.template,
            "image-name": image,
            "command": command,
            "port": port,
            "cull-timeout": cull_timeout_s,
        });
        self.target.call_ok(Method::POST, "/api/templates", Some(&body)).await.context("registering the template")?;
        Ok(())
    }

    /// Creates or resizes the pool.
    pub async fn resize(&self, size: u32, cap: u32) -> anyhow::Result<()> {
        let body = json!({"size": size, "cap": cap});
        let path = format!("/api/pools/{}", self.template);
        self.target.call_ok(Method::POST, &path, Some(&body)).await.context("sizing the pool")?;
        Ok(())
    }

    pub async fn counts(&self) -> anyhow::Result<Counts> {
        let v = self.target.call_ok(Method::GET, &format!("/api/pools/{}", self.template), None).await?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        Ok(Counts {
            running: n("running"),
            available: n("available"),
            warming: n("warming"),
            claimed: n("claimed"),
            size: n("size"),
        })
    }

    /// `POST /api/applications/{template}`, timed from sending to the whole answer read.
    pub async fn claim(&self) -> ClaimResult {
        let path = format!("/api/applications/{}", self.template);
        let t0 = Instant::now();
        let answer = self.target.call(Method::POST, &path, None).await;
        let latency = t0.elapsed();
        match answer {
            Ok((status, v)) if status.is_success() => match (v["id"].is_string(), v["location"].is_string()) {
                (true, true) => ClaimResult { latency, outcome: Outcome::Ready, error: None },
                (true, false) => ClaimResult { latency, outcome: Outcome::NotReady, error: None },
                (false, _) => ClaimResult { latency, outcome: Outcome::Failed, error: Some(format!("no id in {v}")) },
            },
            Ok((status, _)) if status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                ClaimResult { latency, outcome: Outcome::Full, error: None }
            }
            Ok((status, v)) => ClaimResult { latency, outcome: Outcome::Failed, error: Some(format!("{status}: {v}")) },
            Err(e) => ClaimResult { latency, outcome: Outcome::Failed, error: Some(format!("{e:#}")) },
        }
    }

    /// Waits until `available` is at least `n` and nothing is claimed any more (claimed
    /// members of an earlier phase released), showing progress.
    pub async fn wait_full(
        &self,
        n: u64,
        timeout: Duration,
        progress: Progress,
        what: &str,
    ) -> anyhow::Result<Duration> {
        let bar = progress.bar(n, what);
        let t0 = Instant::now();
        loop {
            let c = self.counts().await?;
            bar.set_position(c.available.min(n));
            if c.available >= n && c.claimed == 0 {
                bar.finish_and_clear();
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bar.abandon();
                anyhow::bail!("pool {} not back to {n} available within {timeout:?}: {c:?}", self.template);
            }
            tokio::time::sleep(FILL_POLL).await;
        }
    }
}
