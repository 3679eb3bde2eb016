//! Template references (`t`, `t:tag`, `t:tag@YYYY-MM-DD-HH:MM:SS`), id and tag name rules, and
//! tag times.

use std::fmt;

use crate::{FieldError, Millis};

/// The tag a reference without one means.
pub const DEFAULT_TAG: &str = "latest";

/// The one id Tapis refuses for templates: it collides with the `/templates/tags` route.
const RESERVED_TEMPLATE_IDS: &[&str] = &["tags"];

/// Last representable tag time: 9999-12-31-23:59:59 UTC, in milliseconds.
const MAX_TAG_MS: Millis = 253_402_300_799_000;

/// A reference from a pod (or a template tag's definition) to a template tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateRef {
    pub template_id: String,
    pub tag: String,
    /// `YYYY-MM-DD-HH:MM:SS` when the reference is pinned to one tag version.
    pub timestamp: Option<String>,
}

impl TemplateRef {
    /// Parses `t` (tag "latest"), `t:tag` or `t:tag@YYYY-MM-DD-HH:MM:SS`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("template reference is empty".into());
        }
        let (head, timestamp) = match s.split_once('@') {
            Some((head, ts)) => (head, Some(ts)),
            None => (s, None),
        };
        if timestamp.is_some_and(|ts| ts.contains('@')) {
            return Err("more than one '@' in template reference".into());
        }
        let mut parts = head.split(':');
        let template_id = parts.next().unwrap_or_default();
        let tag = parts.next();
        if parts.next().is_some() {
            return Err("more than one ':' before the timestamp (expected template:tag@timestamp)".into());
        }
        if tag.is_none() && timestamp.is_some() {
            return Err("a timestamp needs a tag: use template:tag@YYYY-MM-DD-HH:MM:SS".into());
        }
        let tag = tag.unwrap_or(DEFAULT_TAG);
        let mut problems = Vec::new();
        validate_template_id("template id", template_id, &mut problems);
        validate_tag_name("tag", tag, &mut problems);
        if let Some(ts) = timestamp
            && parse_tag_time(ts).is_none()
        {
            problems.push(FieldError::new("timestamp", "must be a UTC time written YYYY-MM-DD-HH:MM:SS"));
        }
        if !problems.is_empty() {
            let parts: Vec<String> = problems.iter().map(ToString::to_string).collect();
            return Err(parts.join("; "));
        }
        Ok(Self { template_id: template_id.into(), tag: tag.into(), timestamp: timestamp.map(Into::into) })
    }

    /// A reference to exactly one tag version.
    pub fn pinned(template_id: impl Into<String>, tag: impl Into<String>, timestamp: impl Into<String>) -> Self {
        Self { template_id: template_id.into(), tag: tag.into(), timestamp: Some(timestamp.into()) }
    }

    pub fn is_pinned(&self) -> bool {
        self.timestamp.is_some()
    }

    /// The same reference without its timestamp: follows the newest version of the tag again
    /// (`restart?grab_latest_template_tag`).
    pub fn unpinned(&self) -> Self {
        Self { timestamp: None, ..self.clone() }
    }
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.template_id, self.tag)?;
        if let Some(ts) = &self.timestamp {
            write!(f, "@{ts}")?;
        }
        Ok(())
    }
}

/// Is `id` a valid template id (3–64 lowercase letters and digits starting with a letter,
/// not `tags`)? The same rule as pod ids.
pub fn validate_template_id(field: &str, id: &str, out: &mut Vec<FieldError>) {
    crate::spec::validate_lowercase_id(field, id, RESERVED_TEMPLATE_IDS, out);
}

/// Is `tag` a valid tag name (`^[a-zA-Z0-9.-]+$`, 1–80 characters)?
pub fn validate_tag_name(field: &str, tag: &str, out: &mut Vec<FieldError>) {
    let len = tag.chars().count();
    if !(1..=80).contains(&len) {
        out.push(FieldError::new(field, format!("must be 1 to 80 characters long (got {len})")));
    }
    if !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        out.push(FieldError::new(field, "must match ^[a-zA-Z0-9.-]+$ (letters, digits, '.' and '-')"));
    }
}

/// `YYYY-MM-DD-HH:MM:SS` in UTC, truncated to the second. Times outside years 1970–9999 are
/// clamped so the result always parses back with [`parse_tag_time`].
pub fn format_tag_time(ms: Millis) -> String {
    let secs = ms.clamp(0, MAX_TAG_MS).div_euclid(1000);
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}-{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The milliseconds of a `YYYY-MM-DD-HH:MM:SS` UTC time; `None` unless it has exactly that
/// shape and names a real calendar time.
pub fn parse_tag_time(s: &str) -> Option<Millis> {
    let shape_ok = s.len() == 19
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 | 10 => b == b'-',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]-[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(s, &fmt).ok()?.assume_utc();
    Some(t.unix_timestamp() * 1000)
}

/// The creation time of a new tag version: whole seconds like Tapis (so the time is exactly
/// what `tag_timestamp` shows), but strictly after the newest existing version of the same
/// template and tag, so two pushes within one second still get distinct timestamps.
pub fn next_tag_time(now_ms: Millis, newest_existing_ms: Option<Millis>) -> Millis {
    let now = now_ms.clamp(0, MAX_TAG_MS);
    let candidate = now - now.rem_euclid(1000);
    match newest_existing_ms {
        Some(newest) => {
            let newest = newest.clamp(0, MAX_TAG_MS);
            candidate.max(newest - newest.rem_euclid(1000) + 1000)
        }
        None => candidate,
    }
}
