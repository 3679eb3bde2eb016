//! Entry points: reading a document, applying start-time overrides, rendering.

use super::build::build;
use super::model::{Format, SessionTemplate};
use super::node::{DOCUMENT, Node};
use super::schema::read;
use super::walk::{Cx, Mode};
use crate::FieldError;

/// Reads a taskTemplate document from YAML or JSON text. Every problem is returned, each with
/// the dotted path of the key as written (`spec.kernel.image`, `spec.kernel.run.startupCommand`).
pub fn parse(text: &str, format: Format) -> Result<SessionTemplate, Vec<FieldError>> {
    let node = Node::from_text(text, format).map_err(|e| vec![e])?;
    from_node(&node)
}

pub(super) fn from_node(node: &Node) -> Result<SessionTemplate, Vec<FieldError>> {
    let mut cx = Cx::new(Mode::Document);
    let draft = read(&mut cx, node);
    finish(cx, draft)
}

fn finish(mut cx: Cx, draft: super::schema::Draft) -> Result<SessionTemplate, Vec<FieldError>> {
    match build(&mut cx, draft) {
        Some(t) if cx.errors.is_empty() => Ok(t),
        _ => Err(cx.errors),
    }
}

/// The template with start-time `overrides` applied. Overrides are a partial document with the
/// same keys, aliases and value rules: scalars replace, `environ`, `mounts` and `resources`
/// merge per key, the `git` and `run` sections merge per field, and an explicit `null` removes
/// a key, a section or an optional field (`environ: null` removes every variable). In an
/// override a mount's `null` removes the mount; `""` mounts it at the default path.
/// `api_version`, `kind` and `metadata.name` cannot be overridden. The result is checked as a
/// whole (e.g. switching to `batch` needs a startup command).
pub fn apply_overrides(t: &SessionTemplate, overrides: &serde_json::Value) -> Result<SessionTemplate, Vec<FieldError>> {
    let base = serde_json::to_value(t)
        .map_err(|e| FieldError::new(DOCUMENT, format!("cannot be read: {e}")))
        .and_then(|v| Node::from_json(&v))
        .map_err(|e| vec![e])?;
    let over = Node::from_json(overrides).map_err(|e| vec![e])?;
    // The stored template is read again rather than trusted, so an invalid one is reported too.
    let mut cx = Cx::new(Mode::Document);
    let mut draft = read(&mut cx, &base);
    cx.mode = Mode::Override;
    draft.merge(read(&mut cx, &over));
    finish(cx, draft)
}

impl SessionTemplate {
    /// Every problem with this template, as [`parse`] would report it for its canonical form.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        apply_overrides(self, &serde_json::Value::Null).map(|_| ())
    }

    /// The canonical document text.
    pub fn render(&self, format: Format) -> Result<String, RenderError> {
        match format {
            Format::Yaml => yaml_serde::to_string(self).map_err(|e| RenderError(e.to_string())),
            Format::Json => serde_json::to_string_pretty(self).map_err(|e| RenderError(e.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render session template: {0}")]
pub struct RenderError(String);
