//! A format-neutral value tree that YAML and JSON text (and `serde_json::Value` overrides) are
//! read into before the schema walk.
//!
//! Unlike `yaml_serde::Value` or `serde_json::Value`, it keeps every mapping entry in document
//! order, duplicates included, and remembers whether a key was written as a string: both are
//! reported as field errors with their path instead of being collapsed silently.
//!
//! It deliberately has no `Debug`: a tree may hold a literal secret a user pasted by mistake.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::Format;
use crate::FieldError;

/// Largest document accepted, in bytes. Templates are small; this bounds the work done on
/// hostile input before any field is looked at.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Field name used for problems with the document as a whole.
pub const DOCUMENT: &str = "document";

#[derive(Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    /// A number, by its decimal text (`2`, `0.5`, `-1`): the schema decides what it may mean.
    Number(String),
    String(String),
    Sequence(Vec<Node>),
    Mapping(Vec<Entry>),
}

#[derive(Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    /// False when the key was a YAML number, boolean or null (`1: x`, `true: y`).
    pub key_is_string: bool,
    pub value: Node,
}

impl Node {
    /// What kind of value this is, for error messages (never the value itself).
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::String(_) => "a string",
            Node::Sequence(_) => "a list",
            Node::Mapping(_) => "a mapping",
        }
    }

    /// Reads a whole document. Syntax errors become one error on [`DOCUMENT`].
    pub fn from_text(text: &str, format: Format) -> Result<Node, FieldError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(FieldError::new(
                DOCUMENT,
                format!("is {} bytes long; at most {MAX_DOCUMENT_BYTES} allowed", text.len()),
            ));
        }
        match format {
            Format::Yaml => {
                yaml_serde::from_str(text).map_err(|e| FieldError::new(DOCUMENT, format!("is not valid YAML: {e}")))
            }
            Format::Json => {
                serde_json::from_str(text).map_err(|e| FieldError::new(DOCUMENT, format!("is not valid JSON: {e}")))
            }
        }
    }

    pub fn from_json(value: &serde_json::Value) -> Result<Node, FieldError> {
        Node::deserialize(value).map_err(|e| FieldError::new(DOCUMENT, format!("cannot be read: {e}")))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plain YAML or JSON value (no tags)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Number(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        // Display never uses an exponent and round-trips, so `0.5` reads back as "0.5".
        Ok(Node::Number(v.to_string()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            let (key, key_is_string) = match key {
                Node::String(s) => (s, true),
                Node::Number(n) => (n, false),
                Node::Bool(b) => (b.to_string(), false),
                Node::Null => ("null".to_string(), false),
                Node::Sequence(_) | Node::Mapping(_) => {
                    return Err(de::Error::custom("a mapping key must be a plain string"));
                }
            };
            entries.push(Entry { key, key_is_string, value });
        }
        Ok(Node::Mapping(entries))
    }
}
