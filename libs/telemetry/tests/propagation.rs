//! Trace context survives a trip through message headers: a span continued from injected
//! headers belongs to the same trace.

use std::collections::BTreeMap;

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

#[test]
fn traceparent_round_trips_through_headers() {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let producer = tracing::info_span!("publish");
        let mut headers = BTreeMap::new();
        let sent_trace = producer.in_scope(|| {
            corral_telemetry::inject_current(&mut headers);
            tracing::Span::current().context().span().span_context().trace_id()
        });
        let tp = headers.get("traceparent").expect("traceparent injected");
        assert!(tp.starts_with("00-") && tp.contains(&sent_trace.to_string()), "{tp}");

        let consumer = tracing::info_span!("consume");
        corral_telemetry::extract_parent(&consumer, &headers);
        let got_trace = consumer.context().span().span_context().trace_id();
        assert_eq!(got_trace, sent_trace);
    });
}

#[test]
fn no_header_means_no_parent() {
    let headers = BTreeMap::new();
    let span = tracing::info_span!("orphan");
    corral_telemetry::extract_parent(&span, &headers);
    let mut out = BTreeMap::new();
    corral_telemetry::inject_current(&mut out);
    assert!(!out.contains_key("traceparent"), "nothing to inject without tracing: {out:?}");
}
