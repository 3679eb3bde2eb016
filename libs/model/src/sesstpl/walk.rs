//! Walking a [`Node`] by hand: mappings with aliased keys, scalars, and maps, collecting every
//! problem with its dotted path instead of stopping at the first.

use std::collections::BTreeMap;

use super::node::{Entry, Node};
use crate::FieldError;

/// Whether a tree is a whole document or an override of one. They differ only in what an
/// explicit `null` means: "not given" in a document, "remove" in an override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Document,
    Override,
}

/// What a document or override says about one field.
#[derive(Clone, PartialEq)]
pub(super) enum Slot<T> {
    /// Not mentioned: the value underneath (or the default) stays.
    Keep,
    /// Explicitly removed (override `null`).
    Clear,
    /// Present but wrong; the error is already recorded.
    Invalid,
    Set(T),
}

impl<T> Slot<T> {
    /// Applies `over` on top: anything but `Keep` replaces.
    pub fn merge(&mut self, over: Slot<T>) {
        if !matches!(over, Slot::Keep) {
            *self = over;
        }
    }
}

/// What a document or override says about a map: per key a value, or `None` to remove it.
#[derive(Clone, PartialEq)]
pub(super) struct MapDraft<V> {
    /// The whole map was removed (override `null`) before `entries` apply.
    pub clear: bool,
    pub entries: BTreeMap<String, Option<V>>,
}

impl<V> Default for MapDraft<V> {
    fn default() -> Self {
        Self { clear: false, entries: BTreeMap::new() }
    }
}

impl<V> MapDraft<V> {
    pub fn merge(&mut self, over: MapDraft<V>) {
        if over.clear {
            self.entries.clear();
            self.clear = true;
        }
        self.entries.extend(over.entries);
    }

    /// The resulting map: removed keys dropped.
    pub fn resolve(self) -> BTreeMap<String, V> {
        self.entries.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
    }
}

/// One accepted key of a mapping: its canonical name and the other spellings accepted.
pub(super) type KeySpec = (&'static str, &'static [&'static str]);

/// Backend.AI keys Corral knowingly does not support, with a specific message.
const UNSUPPORTED: &[&str] =
    &["architecture", "scaling_group", "scalingGroup", "agent_list", "agentList", "cuda.shares", "cluster_mode"];

/// The recognised entries of one mapping, by canonical name.
pub(super) struct Section<'n> {
    found: BTreeMap<&'static str, (String, &'n Node)>,
}

impl<'n> Section<'n> {
    /// The entry for `canonical`: the path as written (alias included) and its value.
    pub fn get(&self, canonical: &str) -> Option<(&str, &'n Node)> {
        self.found.get(canonical).map(|(p, n)| (p.as_str(), *n))
    }
}

/// A mapping-valued field as found.
pub(super) enum Sub<'n> {
    Absent,
    Null,
    Invalid,
    Map(Section<'n>),
}

pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

pub(super) struct Cx {
    pub mode: Mode,
    pub errors: Vec<FieldError>,
}

impl Cx {
    pub fn new(mode: Mode) -> Self {
        Self { mode, errors: Vec::new() }
    }

    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    /// Checks a key's spelling; returns false (with the error recorded) for non-string keys.
    fn string_key(&mut self, path: &str, entry: &Entry) -> bool {
        if !entry.key_is_string {
            self.error(path, "key must be a string (quote it in YAML)");
        }
        entry.key_is_string
    }

    /// Sorts a mapping's entries into `keys`, reporting unknown keys, non-string keys and two
    /// spellings of one field (naming both paths).
    pub fn section<'n>(&mut self, path: &str, entries: &'n [Entry], keys: &[KeySpec]) -> Section<'n> {
        let mut found: BTreeMap<&'static str, (String, &'n Node)> = BTreeMap::new();
        for entry in entries {
            let at = join(path, &entry.key);
            if !self.string_key(&at, entry) {
                continue;
            }
            let Some((canonical, _)) =
                keys.iter().find(|(c, aliases)| *c == entry.key || aliases.contains(&entry.key.as_str()))
            else {
                let message = if UNSUPPORTED.contains(&entry.key.as_str()) {
                    format!("unknown key: Backend.AI's '{}' is not supported by Corral", entry.key)
                } else {
                    let expected: Vec<&str> = keys.iter().map(|(c, _)| *c).collect();
                    format!("unknown key (expected one of: {})", expected.join(", "))
                };
                self.error(at, message);
                continue;
            };
            match found.get(canonical) {
                Some((first, _)) if *first == at => self.error(at, "duplicate key"),
                Some((first, _)) => {
                    let message = format!("conflicts with {first}: both set '{}'", join(path, canonical));
                    self.error(at, message);
                }
                None => {
                    found.insert(canonical, (at, &entry.value));
                }
            }
        }
        Section { found }
    }

    /// A field whose value must be a mapping of the keys in `keys`.
    pub fn sub<'n>(&mut self, field: Option<(&str, &'n Node)>, keys: &[KeySpec]) -> Sub<'n> {
        match field {
            None => Sub::Absent,
            Some((_, Node::Null)) => Sub::Null,
            Some((path, Node::Mapping(entries))) => Sub::Map(self.section(path, entries, keys)),
            Some((path, other)) => {
                self.error(path, format!("must be a mapping, not {}", other.kind()));
                Sub::Invalid
            }
        }
    }

    /// A scalar field. `null` means "not given" in a document (an error if `required`) and
    /// "remove" in an override (an error if `required`).
    pub fn scalar<T>(
        &mut self,
        field: Option<(&str, &Node)>,
        required: bool,
        read: impl FnOnce(&Node) -> Result<T, String>,
    ) -> Slot<T> {
        match field {
            None => Slot::Keep,
            Some((path, Node::Null)) => match (self.mode, required) {
                (Mode::Document, false) => Slot::Keep,
                (Mode::Document, true) => {
                    self.error(path, "is required");
                    Slot::Invalid
                }
                (Mode::Override, false) => Slot::Clear,
                (Mode::Override, true) => {
                    self.error(path, "is required and cannot be removed");
                    Slot::Invalid
                }
            },
            Some((path, node)) => match read(node) {
                Ok(v) => Slot::Set(v),
                Err(message) => {
                    self.error(path, message);
                    Slot::Invalid
                }
            },
        }
    }

    /// A map field with free keys. `check_key` vets each key; `read` gets every value that is
    /// not an override's `null` (which removes the key), with its key, and returns the value or
    /// why it is wrong.
    pub fn map<V>(
        &mut self,
        field: Option<(&str, &Node)>,
        check_key: impl Fn(&str) -> Result<(), String>,
        read: impl Fn(&str, &Node) -> Result<V, String>,
    ) -> MapDraft<V> {
        let mut draft = MapDraft::default();
        let (path, entries) = match field {
            None => return draft,
            Some((_, Node::Null)) => {
                draft.clear = self.mode == Mode::Override;
                return draft;
            }
            Some((path, Node::Mapping(entries))) => (path, entries),
            Some((path, other)) => {
                self.error(path, format!("must be a mapping, not {}", other.kind()));
                return draft;
            }
        };
        let mut seen = std::collections::BTreeSet::new();
        for entry in entries {
            let at = join(path, &entry.key);
            if !self.string_key(&at, entry) {
                continue;
            }
            if !seen.insert(entry.key.as_str()) {
                self.error(at, "duplicate key");
                continue;
            }
            if let Err(message) = check_key(&entry.key) {
                self.error(at, message);
                continue;
            }
            if self.mode == Mode::Override && entry.value == Node::Null {
                draft.entries.insert(entry.key.clone(), None);
                continue;
            }
            match read(&entry.key, &entry.value) {
                Ok(v) => {
                    draft.entries.insert(entry.key.clone(), Some(v));
                }
                Err(message) => self.error(at, message),
            }
        }
        draft
    }
}

/// The text of a string value; numbers and booleans are refused rather than converted, since
/// YAML would already have changed them (`19.10` reads as `19.1`).
pub(super) fn text(node: &Node) -> Result<&str, String> {
    match node {
        Node::String(s) => Ok(s),
        Node::Number(_) | Node::Bool(_) => Err(format!("must be a string, not {} (quote it in YAML)", node.kind())),
        other => Err(format!("must be a string, not {}", other.kind())),
    }
}

/// Any string (scripts keep their newlines and tabs) of at most `max` bytes.
pub(super) fn bounded_text(node: &Node, max: usize) -> Result<String, String> {
    let s = text(node)?;
    if s.len() > max {
        return Err(format!("is {} bytes long; at most {max} allowed", s.len()));
    }
    Ok(s.to_string())
}

/// A one-line, non-empty name or label, at most `max` characters.
pub(super) fn line(node: &Node, max: usize) -> Result<String, String> {
    let s = text(node)?;
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if s.chars().count() > max {
        return Err(format!("is longer than {max} characters"));
    }
    Ok(s.to_string())
}
