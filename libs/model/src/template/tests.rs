//! Tables for each pure decision, plus proptests for the two invariants the issue names.

mod chain;
mod layer;
mod merge;
mod objects;
mod props;
mod reference;
mod tags;

use super::{PodLayer, TemplateTag};

/// A layer from JSON, so rows read like the API bodies they stand for.
fn layer(json: &str) -> PodLayer {
    serde_json::from_str(json).expect("test layer parses")
}

/// 2024-06-10-17:20:27 UTC.
const T0: i64 = 1_718_040_027_000;

fn tag(template: &str, name: &str, at: i64, def: &str) -> TemplateTag {
    TemplateTag::new(template, name, layer(def), "msg", "alice", at)
}
