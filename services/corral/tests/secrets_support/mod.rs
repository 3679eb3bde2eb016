//! Witnesses for the secrets test: every tracing record of this process (the whole stack runs
//! in-process) and a copy of every message on the namespace's exchanges.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use corral_bus::{Bus, ConsumeOptions};
use corral_protocol::topology::{
    COMMANDS_EXCHANGE, DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY,
    shard_routing_key,
};
use futures::StreamExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every event and span field of every level, as text. A hand-written subscriber rather than
/// a formatter: it sees TRACE from every crate and the fields of spans, not only events.
struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    next_id: AtomicU64,
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={} ({:?})", field.name(), value, value);
    }
}

impl Capture {
    fn push(&self, meta: &Metadata<'_>, kind: &str, record: impl FnOnce(&mut Line<'_>)) {
        let mut text = format!("{} {} {} {}:", meta.level(), kind, meta.target(), meta.name());
        record(&mut Line(&mut text));
        lock(&self.lines).push(text);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.push(span.metadata(), "span", |l| span.record(l));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut text = "span-record:".to_string();
        values.record(&mut Line(&mut text));
        lock(&self.lines).push(text);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        self.push(event.metadata(), "event", |l| event.record(l));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Installs the capturing subscriber for this test binary (once) and returns its buffer.
pub fn capture_logs() -> Arc<Mutex<Vec<String>>> {
    static LINES: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sub = Capture { lines: lines.clone(), next_id: AtomicU64::new(1) };
            tracing::subscriber::set_global_default(sub).expect("no other global subscriber in this test binary");
            lines
        })
        .clone()
}

/// Snapshot of the captured log lines.
pub fn log_lines(lines: &Mutex<Vec<String>>) -> Vec<String> {
    lock(lines).clone()
}

/// A private queue on every binding the services use: each shard key of the commands
/// exchange (direct, so `#` would match nothing there), `#` on events, the requests key, and
/// the dead-letter fanout. Each delivery is kept as "exchange routing-info headers body".
pub struct BusTap {
    pub messages: Arc<Mutex<Vec<String>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl BusTap {
    pub async fn start(bus: Arc<dyn Bus>, shards: u32) -> BusTap {
        let mut bindings: Vec<(&str, String)> =
            (0..shards).map(|k| (COMMANDS_EXCHANGE, shard_routing_key(k))).collect();
        bindings.push((EVENTS_EXCHANGE, "#".into()));
        bindings.push((REQUESTS_EXCHANGE, REQUESTS_ROUTING_KEY.into()));
        bindings.push((DEAD_LETTER_EXCHANGE, "#".into()));
        let messages = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for (exchange, key) in bindings {
            let (_, consumer) =
                bus.subscribe(exchange, &key, ConsumeOptions::default()).await.expect("bind a tap queue");
            let sink = messages.clone();
            let mut stream = consumer.stream;
            let cancel = consumer.cancel;
            tasks.spawn(async move {
                while let Some(d) = stream.next().await {
                    let text = format!(
                        "{exchange} [{key}] headers={:?} reply_to={:?} correlation={:?} body={}",
                        d.headers,
                        d.reply_to,
                        d.correlation_id,
                        String::from_utf8_lossy(&d.body)
                    );
                    lock(&sink).push(text);
                    let _ = d.ack().await;
                }
                cancel();
            });
        }
        BusTap { messages, tasks }
    }

    pub fn snapshot(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }

    pub fn stop(mut self) {
        self.tasks.abort_all();
    }
}

/// The lines of `haystack` holding any of `secrets`, each with the secret's name.
pub fn leaks<'a>(haystack: impl IntoIterator<Item = &'a String>, secrets: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    for line in haystack {
        for (name, value) in secrets {
            if line.contains(value) {
                found.push(format!("{name} in: {line}"));
            }
        }
    }
    found
}
