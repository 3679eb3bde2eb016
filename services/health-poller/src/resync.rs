//! The periodic resync: compares what the store believes runs with what the runtime has,
//! so a lost runtime event or pod event never leaves a pod stuck.

use std::collections::HashMap;
use std::sync::Arc;

use corral_model::{PodKey, PodStatus};
use corral_protocol::Observation;
use corral_runtime::{ContainerInfo, ContainerState, RuntimeError};
use corral_store::StoreError;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::Ctx;
use crate::known::{Known, Summary};
use crate::probes::Target;

const EXITED_REASON: &str = "found exited during resync";

#[derive(Debug, thiserror::Error)]
enum ResyncError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resyncs at start, every interval, and whenever another loop asks for it.
pub(crate) async fn every_interval(ctx: Arc<Ctx>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(ctx.settings.resync_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut known = Known::default();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
            () = ctx.resync_now.notified() => {}
        }
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            r = resync_once(&ctx, &mut known) => r,
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "resync failed; retrying at the next interval");
        }
    }
}

/// What the resync does about one pod.
#[derive(Debug, PartialEq)]
enum Verdict {
    Nothing,
    Gone,
    Exited(Option<i64>),
    Probe,
}

/// Compares a pod's observed status with its container's state (`None`: no such container).
fn verdict(status: PodStatus, container: Option<ContainerState>) -> Verdict {
    if !matches!(status, PodStatus::Creating | PodStatus::Available) {
        return Verdict::Nothing;
    }
    match container {
        None => Verdict::Gone,
        Some(ContainerState::Exited(code)) => Verdict::Exited(code),
        Some(ContainerState::Running) if status == PodStatus::Creating => Verdict::Probe,
        Some(ContainerState::Running | ContainerState::Created) => Verdict::Nothing,
    }
}

async fn resync_once(ctx: &Ctx, known: &mut Known) -> Result<(), ResyncError> {
    let containers: HashMap<String, ContainerInfo> =
        ctx.runtime.list().await?.into_iter().map(|c| (c.id.clone(), c)).collect();
    ctx.probes.prune();
    known.refresh(ctx.store.as_ref(), ctx.settings.shards).await?;
    for (pod, summary) in known.iter() {
        check_pod(ctx, &containers, pod, summary).await;
    }
    tracing::debug!(containers = containers.len(), pods = known.len(), reads = known.last_reads, "resync done");
    Ok(())
}

async fn check_pod(ctx: &Ctx, containers: &HashMap<String, ContainerInfo>, pod: &PodKey, summary: &Summary) {
    let Some(container_id) = summary.container_id.as_deref() else { return };
    let mut state = containers.get(container_id).map(|c| c.state);
    let mut v = verdict(summary.status, state);
    if v == Verdict::Gone {
        // The container may have been created after the list was taken: ask again.
        state = match ctx.runtime.inspect(container_id).await {
            Ok(info) => info.map(|c| c.state),
            Err(e) => {
                tracing::warn!(%pod, container_id, error = %e, "cannot inspect container");
                return;
            }
        };
        v = verdict(summary.status, state);
    }
    match v {
        Verdict::Nothing => {}
        Verdict::Gone => ctx.publisher.observe_or_log(pod, container_id, Observation::Gone).await,
        Verdict::Exited(exit_code) => {
            let what = Observation::Exited { exit_code, reason: EXITED_REASON.into() };
            ctx.publisher.observe_or_log(pod, container_id, what).await;
        }
        Verdict::Probe => {
            if ctx.probes.is_active(pod, container_id) {
                return;
            }
            if let (Some(kind), Some(endpoint)) = (summary.probe, summary.endpoint.clone()) {
                let target = Target { pod: pod.clone(), container_id: container_id.to_string(), endpoint, kind };
                if ctx.probes.ensure(target, &ctx.publisher, &ctx.settings) {
                    tracing::info!("readiness probe started by resync (its pod event was missed)");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_table() {
        use ContainerState::{Created, Exited, Running};
        use PodStatus::{Available, Creating, Stopped};
        let cases = [
            (Creating, None, Verdict::Gone),
            (Available, None, Verdict::Gone),
            (Available, Some(Exited(Some(3))), Verdict::Exited(Some(3))),
            (Creating, Some(Exited(None)), Verdict::Exited(None)),
            (Creating, Some(Running), Verdict::Probe),
            (Available, Some(Running), Verdict::Nothing),
            (Creating, Some(Created), Verdict::Nothing),
            (Stopped, None, Verdict::Nothing),
            (Stopped, Some(Exited(Some(1))), Verdict::Nothing),
        ];
        for (status, state, want) in cases {
            assert_eq!(verdict(status, state), want, "{status} {state:?}");
        }
    }
}
