//! W3C trace context (`traceparent`) in message headers, so a trace follows a pod request
//! from the gateway through the bus into the spawner.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Out<'a>(&'a mut BTreeMap<String, String>);

impl Injector for Out<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct In<'a>(&'a BTreeMap<String, String>);

impl Extractor for In<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes the current span's trace context into `headers` (nothing when tracing is off).
pub fn inject_current(headers: &mut BTreeMap<String, String>) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut Out(headers)));
}

/// Makes `span` a child of the trace context found in `headers`, if any.
pub fn extract_parent(span: &tracing::Span, headers: &BTreeMap<String, String>) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&In(headers)));
    let _ = span.set_parent(cx);
}
