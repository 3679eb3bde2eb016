//! `requests`: spawn requests published straight to `corral.requests` by a system outside
//! Corral (plain lapin, `docs/amqp-requests.md`), requests per second with their replies;
//! and, on the same broker in the same run, raw publish → consume → ack of messages of the
//! same size.

use std::time::Duration;

use anyhow::Context as _;
use lapin::BasicProperties;
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use serde_json::json;

use super::amqp_roundtrip::{self, Plan, RoundTrip};
use super::{Outcome, run_tag};
use crate::cli::Common;
use crate::progress::Progress;
use crate::stack::{RuntimeChoice, StackOptions, Target, fresh_namespace};
use crate::stats::TABLE_HEADER;
use crate::usage::{Snapshot, Usage};

/// Options of `requests`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Spawn requests to publish (and messages of the baseline).
    #[arg(long, default_value_t = 5000)]
    pub requests: usize,
    /// Publishes awaiting their confirm at once.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
    /// Prefetch of the consumers of this client (replies; baseline messages). The gateway's
    /// request consumer uses Corral's `amqp.prefetch` (256).
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    /// Run without the health-poller and log-collector.
    #[arg(long)]
    pub no_auxiliaries: bool,
    /// Give up on each half after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_s: u64,
}

impl Args {
    pub fn stack_options(&self, common: &Common) -> StackOptions {
        StackOptions { auxiliaries: !self.no_auxiliaries, ..StackOptions::basic(RuntimeChoice::Simulated, 1, common) }
    }
}

/// The request for pod `i`: every one the same size (zero-padded ids).
fn request(prefix: &str, i: usize) -> Vec<u8> {
    let pod = json!({
        "pod_id": format!("{prefix}{i:07}"),
        "image": "corral-test/busybox",
        "networking": {"default": {"protocol": "local_only", "port": 5000}},
    });
    serde_json::to_vec(&json!({"v": 1, "body": {"op": "spawn", "pod": pod}})).unwrap_or_default()
}

/// A reply counts when it says `ok`.
fn reply_ok(body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("undecodable reply: {e}"))?;
    if v["body"]["ok"] == true { Ok(()) } else { Err(v["body"]["error"].to_string()) }
}

pub async fn run(target: &Target, args: &Args, common: &Common, progress: Progress) -> anyhow::Result<Outcome> {
    let stack = target.local_stack("requests")?;
    let prefix = format!("q{}", run_tag());
    let timeout = Duration::from_secs(args.timeout_s);
    let conn = amqp_roundtrip::connect(&common.amqp_url).await?;
    let (pub_ch, sub_ch) = (conn.create_channel().await?, conn.create_channel().await?);

    eprintln!("requests: raw baseline, {} messages", args.requests);
    let queue = format!("{}.corral-load-baseline", fresh_namespace());
    let mut durable = FieldTable::default();
    durable.insert("x-queue-type".into(), AMQPValue::LongString(LongString::from("classic")));
    let opts = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    sub_ch
        .queue_declare(ShortString::from(queue.as_str()), opts, durable)
        .await
        .context("declaring the baseline queue")?;
    let plan = Plan {
        exchange: "",
        routing_key: &queue,
        consume_from: &queue,
        messages: args.requests,
        window: args.in_flight,
        prefetch: args.prefetch,
        timeout,
    };
    let persistent = || BasicProperties::default().with_delivery_mode(2);
    let make_raw = |i| (request(&prefix, i), persistent().with_content_type(ShortString::from("application/json")));
    let before = Snapshot::take(&common.redis_url).await;
    let baseline = amqp_roundtrip::run(&pub_ch, &sub_ch, &plan, make_raw, |_| Ok(()), progress).await;
    let baseline_usage = before.until(&Snapshot::take(&common.redis_url).await);
    let deleted = sub_ch.queue_delete(ShortString::from(queue.as_str()), QueueDeleteOptions::default()).await;
    let baseline = baseline.context("raw baseline")?;
    deleted.context("deleting the baseline queue")?;

    eprintln!("requests: {} spawn requests to corral.requests", args.requests);
    let (pub_ch, sub_ch) = (conn.create_channel().await?, conn.create_channel().await?);
    let replies = sub_ch
        .queue_declare(
            ShortString::from(""),
            QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await
        .context("declaring the reply queue")?;
    let reply_to = replies.name().clone();
    let exchange = format!("{}.{}", stack.ns, corral_protocol::topology::REQUESTS_EXCHANGE);
    let plan = Plan {
        exchange: &exchange,
        routing_key: corral_protocol::topology::REQUESTS_ROUTING_KEY,
        consume_from: reply_to.as_str(),
        ..plan
    };
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(corral_protocol::topology::HEADER_TOKEN),
        AMQPValue::LongString(LongString::from(target.token.as_str())),
    );
    let make = |i| {
        let props = persistent()
            .with_content_type(ShortString::from("application/json"))
            .with_reply_to(reply_to.clone())
            .with_headers(headers.clone());
        (request(&prefix, i), props)
    };
    let before = Snapshot::take(&common.redis_url).await;
    let corral =
        amqp_roundtrip::run(&pub_ch, &sub_ch, &plan, make, reply_ok, progress).await.context("spawn requests")?;
    let usage = before.until(&Snapshot::take(&common.redis_url).await);
    let _ = conn.close(200, ShortString::from("done")).await;
    Ok(summarise(args, &corral, &baseline, &usage, &baseline_usage))
}

fn summarise(args: &Args, corral: &RoundTrip, base: &RoundTrip, usage: &Usage, base_usage: &Usage) -> Outcome {
    let pct = corral.per_s / base.per_s.max(f64::EPSILON) * 100.0;
    let mut md = format!(
        "{} spawn requests (`{{\"v\":1,\"body\":{{\"op\":\"spawn\",…}}}}`, {} B of JSON, token header, `reply_to` an \
         exclusive queue) published to `corral.requests` with plain lapin, persistent, with publisher confirms and \
         {} unconfirmed at once; replies consumed and acked by the same client (in-process stack, simulated runtime, \
         1 spawner{}). Baseline: the same client publishes the same bytes to a durable classic queue of the same \
         broker and consumes and acks them (prefetch {}).\n\n",
        corral.messages,
        corral.message_bytes,
        args.in_flight,
        if args.no_auxiliaries { "" } else { ", health-poller, log-collector" },
        args.prefetch
    );
    md.push_str("| figure | value |\n|---|---:|\n");
    md.push_str(&format!("| **requests/s with replies** (first publish → last reply) | **{:.0}** |\n", corral.per_s));
    md.push_str(&format!("| replies ok / refused | {} / {} |\n", corral.ok, corral.refused_count));
    md.push_str(&format!("| raw baseline: publish → consume → ack | {:.0} msgs/s |\n", base.per_s));
    md.push_str(&format!("| Corral requests/s as % of the baseline | {pct:.1}% |\n"));
    md.push_str("\n### Latencies\n\n");
    md.push_str(TABLE_HEADER);
    md.push_str(&corral.latency.row("request published → reply consumed"));
    md.push_str(&corral.confirm.row("request publish → confirm"));
    md.push_str(&base.latency.row("baseline publish → consumed"));
    md.push_str(&base.confirm.row("baseline publish → confirm"));
    if let Some(r) = corral.refused.first() {
        md.push_str(&format!("\nFirst refused reply: `{}`\n", r.replace('`', "'")));
    }
    let cpu = |u: &Usage, per: usize| {
        u.cpu_seconds
            .iter()
            .filter(|(k, _)| k.as_str() != crate::usage::OTHER)
            .map(|(k, s)| format!("{k} {:.0} µs", s / per.max(1) as f64 * 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    };
    md.push_str(&format!(
        "\nCPU per request: {} (baseline per message: {}). `corral-load` is this process: the client and the \
         whole in-process stack.\n\n",
        cpu(usage, corral.messages),
        cpu(base_usage, base.messages)
    ));
    md.push_str(&usage.load_note(corral.seconds));
    let params = json!({
        "requests": args.requests,
        "in_flight": args.in_flight,
        "prefetch": args.prefetch,
        "auxiliaries": !args.no_auxiliaries,
    });
    let results = json!({
        "corral": corral,
        "baseline": base,
        "corral_pct_of_baseline": pct,
        "usage": usage,
        "baseline_usage": base_usage,
    });
    Outcome { params, results, markdown: md }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_all_have_the_same_size_and_replies_are_judged_by_ok() {
        let sizes: Vec<usize> = [0, 7, 99_999, 1_234_567].iter().map(|&i| request("qabc", i).len()).collect();
        assert!(sizes.windows(2).all(|w| w[0] == w[1]), "{sizes:?}");
        let body: serde_json::Value = serde_json::from_slice(&request("qabc", 42)).expect("json");
        assert_eq!(body["body"]["pod"]["pod_id"], "qabc0000042");
        assert_eq!(body["body"]["op"], "spawn");
        assert!(reply_ok(br#"{"v":1,"body":{"ok":true,"pod":{}}}"#).is_ok());
        assert!(reply_ok(br#"{"v":1,"body":{"ok":false,"error":{"status":400}}}"#).is_err());
        assert!(reply_ok(b"not json").is_err());
    }
}
