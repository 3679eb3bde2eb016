//! Tapis-style templates: named, versioned (tagged) sparse pod definitions that pods and other
//! templates build on. Everything here is pure; the gateway fetches tags from the store.
//!
//! # Layout
//! - [`reference`]: `t`, `t:tag`, `t:tag@YYYY-MM-DD-HH:MM:SS`, id and tag rules, tag times.
//! - [`layer`], [`networking`]: sparse definitions ([`PodLayer`]) as templates and pods give them.
//! - [`tags`]: tag versions and picking the one a reference names ([`select_tag`]).
//! - [`chain`]: following references through nested templates ([`Chain`], [`resolve`]).
//! - [`merge`]: layering definitions into a [`PodSpec`](crate::PodSpec) with provenance.
//! - [`objects`]: the template object and the request bodies.
//!
//! Unlike Tapis, a tag version is keyed by `(template_id, tag, time)`: a lookup never returns
//! another template's tag.

pub mod chain;
pub mod layer;
pub mod merge;
pub mod networking;
pub mod objects;
pub mod reference;
pub mod tags;

pub use chain::{Chain, MAX_TEMPLATE_DEPTH, ResolveError, layers_of, resolve};
pub use layer::{PodLayer, ResourcesLayer};
pub use merge::{Derived, LayerSource, merge};
pub use networking::{NETWORKING_FIELDS, NetworkingLayer};
pub use objects::{NewTemplate, NewTemplateTag, NewTemplateTagFromPod, Template, UpdateTemplate};
pub use reference::{
    DEFAULT_TAG, TemplateRef, format_tag_time, next_tag_time, parse_tag_time, validate_tag_name, validate_template_id,
};
pub use tags::{TemplateTag, select_tag};

#[cfg(test)]
mod tests;
