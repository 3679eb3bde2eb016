//! Template tags: append-only versions of a template's pod definition.

use serde::{Deserialize, Serialize};

use super::{PodLayer, TemplateRef, format_tag_time};
use crate::Millis;

/// One version of a tag. Versions are identified by `(template_id, tag, tag time)`, never by
/// `tag_timestamp` alone: two templates may both have `latest@2024-06-10-17:20:27`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TemplateTag {
    pub template_id: String,
    pub tag: String,
    /// `"{tag}@YYYY-MM-DD-HH:MM:SS"` (UTC, the creation time), as Tapis writes it.
    pub tag_timestamp: String,
    pub pod_definition: PodLayer,
    pub commit_message: String,
    pub added_by: String,
    /// Whole seconds (see [`super::next_tag_time`]), so it matches `tag_timestamp`.
    pub creation_ts: Millis,
}

impl TemplateTag {
    /// A tag version created at `creation_ts`, with `tag_timestamp` derived from it.
    pub fn new(
        template_id: impl Into<String>,
        tag: impl Into<String>,
        pod_definition: PodLayer,
        commit_message: impl Into<String>,
        added_by: impl Into<String>,
        creation_ts: Millis,
    ) -> Self {
        let tag = tag.into();
        Self {
            template_id: template_id.into(),
            tag_timestamp: format!("{tag}@{}", format_tag_time(creation_ts)),
            tag,
            pod_definition,
            commit_message: commit_message.into(),
            added_by: added_by.into(),
            creation_ts,
        }
    }

    /// The `YYYY-MM-DD-HH:MM:SS` part of `tag_timestamp` (recomputed from `creation_ts` if
    /// the stored text lacks it).
    pub fn time_text(&self) -> String {
        match self.tag_timestamp.split_once('@') {
            Some((_, ts)) if !ts.is_empty() => ts.to_string(),
            _ => format_tag_time(self.creation_ts),
        }
    }

    /// The reference that names exactly this version.
    pub fn pinned_ref(&self) -> TemplateRef {
        TemplateRef::pinned(&self.template_id, &self.tag, self.time_text())
    }

    /// Does this version answer `r` (same template and tag, same time when `r` is pinned)?
    pub fn matches(&self, r: &TemplateRef) -> bool {
        self.template_id == r.template_id
            && self.tag == r.tag
            && r.timestamp.as_ref().is_none_or(|ts| *ts == self.time_text())
    }
}

/// The version `r` names among `tags`: the exact one when `r` is pinned, otherwise the newest
/// version with that tag name. Only versions of `r.template_id` are considered.
pub fn select_tag<'a>(tags: &'a [TemplateTag], r: &TemplateRef) -> Option<&'a TemplateTag> {
    // The fixed-width time text orders chronologically; creation_ts breaks ties between
    // versions that would share a second.
    tags.iter()
        .filter(|t| t.matches(r))
        .max_by(|a, b| (a.time_text(), a.creation_ts).cmp(&(b.time_text(), b.creation_ts)))
}
