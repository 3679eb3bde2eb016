//! The refill phase's baseline on Docker: how many containers of the pool's image, command
//! and limits the engine itself turns over per second (create → start → answering HTTP →
//! removed), with as many cycles in flight as the refill phase sends claims per second. A
//! refilled pool needs one such cycle per claim (a new instance, and the culled one
//! removed), so this rate bounds any refill on this machine's engine.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::raw_docker::{RawDocker, RawSpec};
use super::spawn_latency::{CPU_MILLIS, MEM_MIB, PIDS_LIMIT};

/// What the baseline measured.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Churn {
    pub in_flight: usize,
    pub cycles: usize,
    pub failures: usize,
    pub wall_s: f64,
    /// Completed cycles per second.
    pub per_s: f64,
}

/// Turns containers over with `in_flight` workers for `duration` (each finishes the cycle it
/// is in), then removes whatever a failed cycle left.
pub async fn measure(
    docker: bollard::Docker,
    image: &str,
    command: &str,
    port: u16,
    run: String,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<Churn> {
    let spec = RawSpec {
        image: image.to_string(),
        command: vec!["/bin/sh".into(), "-c".into(), command.to_string()],
        container_port: port,
        cpu_millis: CPU_MILLIS,
        mem_mib: MEM_MIB,
        pids_limit: PIDS_LIMIT,
    };
    let raw = RawDocker::new(docker, spec, run, Duration::from_millis(5), Duration::from_secs(30));
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let end = t0 + duration;
    let worker = |_: usize| async {
        let (mut done, mut failed) = (0usize, 0usize);
        while Instant::now() < end {
            match raw.once(next.fetch_add(1, Ordering::Relaxed)).await {
                Ok(_) => done += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "a raw docker cycle failed");
                    failed += 1;
                }
            }
        }
        (done, failed)
    };
    let results = futures::future::join_all((0..in_flight.max(1)).map(worker)).await;
    let wall = t0.elapsed();
    raw.remove_leftovers().await?;
    let cycles = results.iter().map(|r| r.0).sum::<usize>();
    let failures = results.iter().map(|r| r.1).sum::<usize>();
    let wall_s = wall.as_secs_f64();
    Ok(Churn { in_flight: in_flight.max(1), cycles, failures, wall_s, per_s: cycles as f64 / wall_s.max(1e-9) })
}
