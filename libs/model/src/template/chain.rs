//! Resolving a pod's template reference through any number of nested templates.
//!
//! [`Chain`] is a pure, step-by-step resolver: the caller asks [`Chain::next_ref`] what to
//! fetch, fetches it from wherever tags live and hands the result to [`Chain::push`]. This
//! keeps the store I/O (async in the gateway) out of the model.

use super::{LayerSource, PodLayer, TemplateRef, TemplateTag};

/// How many templates may be stacked under one pod.
pub const MAX_TEMPLATE_DEPTH: usize = 32;

/// Why a template chain cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("invalid template reference '{reference}': {reason}")]
    BadReference { reference: String, reason: String },
    #[error("template tag not found: '{reference}'")]
    NotFound { reference: String },
    /// `chain` lists the references around the loop: from the first visit of the repeated
    /// template to the reference that leads back to it.
    #[error("template cycle: {}", chain.join(" -> "))]
    Cycle { chain: Vec<String> },
    #[error("templates are nested more than {limit} levels deep")]
    TooDeep { limit: usize },
}

/// A partly or fully resolved chain of templates under one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The references followed so far, as written, the pod's own first.
    refs: Vec<TemplateRef>,
    /// The fetched tags, closest first; `tags[i]` answers `refs[i]`.
    tags: Vec<TemplateTag>,
}

fn parse_ref(text: Option<&str>) -> Result<Option<TemplateRef>, ResolveError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => TemplateRef::parse(t)
            .map(Some)
            .map_err(|reason| ResolveError::BadReference { reference: t.to_string(), reason }),
    }
}

impl Chain {
    /// Starts from the pod's own fields; no `template` (or "") means nothing to resolve.
    pub fn start(pod: &PodLayer) -> Result<Chain, ResolveError> {
        let refs = parse_ref(pod.template.as_deref())?.into_iter().collect();
        Ok(Chain { refs, tags: Vec::new() })
    }

    /// The reference to fetch next; `None` once the chain is complete.
    pub fn next_ref(&self) -> Option<&TemplateRef> {
        self.refs.get(self.tags.len())
    }

    /// Hands over the tag fetched for [`Chain::next_ref`]; `None` means the store has none.
    /// A tag that does not answer the reference (another template, tag or time) counts as
    /// not found. Pushing into a complete chain changes nothing.
    pub fn push(&mut self, tag: Option<TemplateTag>) -> Result<(), ResolveError> {
        let Some(wanted) = self.next_ref() else { return Ok(()) };
        let tag = match tag {
            Some(tag) if tag.matches(wanted) => tag,
            _ => return Err(ResolveError::NotFound { reference: wanted.to_string() }),
        };
        let deeper = parse_ref(tag.pod_definition.template.as_deref())?;
        self.tags.push(tag);
        let Some(deeper) = deeper else { return Ok(()) };
        if let Some(first) = self.refs.iter().position(|r| r.template_id == deeper.template_id) {
            let mut chain: Vec<String> = self.refs.iter().skip(first).map(ToString::to_string).collect();
            chain.push(deeper.to_string());
            return Err(ResolveError::Cycle { chain });
        }
        if self.refs.len() >= MAX_TEMPLATE_DEPTH {
            return Err(ResolveError::TooDeep { limit: MAX_TEMPLATE_DEPTH });
        }
        self.refs.push(deeper);
        Ok(())
    }

    pub fn is_complete(&self) -> bool {
        self.next_ref().is_none()
    }

    /// The pod's own reference, pinned to the version fetched for it; `None` before that
    /// version is known or when the pod has no template.
    pub fn pinned(&self) -> Option<TemplateRef> {
        self.tags.first().map(TemplateTag::pinned_ref)
    }

    /// The fetched tags, deepest first.
    pub fn into_tags(self) -> Vec<TemplateTag> {
        let mut tags = self.tags;
        tags.reverse();
        tags
    }

    /// The layers to [`super::merge`]: the templates deepest first, the pod last.
    pub fn layers<'a>(&'a self, pod: &'a PodLayer) -> Vec<(LayerSource, &'a PodLayer)> {
        layers_of(self.tags.iter().rev(), pod)
    }
}

/// Layers for [`super::merge`] from tags given deepest first, followed by the pod's own.
pub fn layers_of<'a>(
    tags_deepest_first: impl IntoIterator<Item = &'a TemplateTag>,
    pod: &'a PodLayer,
) -> Vec<(LayerSource, &'a PodLayer)> {
    tags_deepest_first
        .into_iter()
        .map(|t| (LayerSource::Template(t.pinned_ref().to_string()), &t.pod_definition))
        .chain(std::iter::once((LayerSource::Pod, pod)))
        .collect()
}

/// Resolves `pod`'s templates with a synchronous `lookup`. Returns the pod's pinned
/// reference and the tags deepest first. Calls `lookup` at most [`MAX_TEMPLATE_DEPTH`] times.
pub fn resolve(
    pod: &PodLayer,
    mut lookup: impl FnMut(&TemplateRef) -> Option<TemplateTag>,
) -> Result<(Option<TemplateRef>, Vec<TemplateTag>), ResolveError> {
    let mut chain = Chain::start(pod)?;
    while let Some(r) = chain.next_ref() {
        let tag = lookup(r);
        chain.push(tag)?;
    }
    Ok((chain.pinned(), chain.into_tags()))
}
