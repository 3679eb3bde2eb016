//! The `overrides` of `corral start-template`: a partial session template built from flags.
//! The server merges it over the template (scalars replace, `environ`, `resources` and
//! `mounts` merge per key, `null` removes a key) and checks it, listing every problem.

use serde_json::{Map, Value};

use super::api::ClientError;

/// Override flags, in the order they apply: `--set` first, then `--env`, then `--unset-env`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OverrideFlags {
    pub set: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub unset_env: Vec<String>,
}

const ENVIRON: [&str; 3] = ["spec", "kernel", "environ"];

/// `PATH=VALUE` for `--set`: a dotted path into the document (`spec.resources.cpu=1`).
pub fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((path, value)) if !path.is_empty() && path.split('.').all(|p| !p.is_empty()) => {
            Ok((path.to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected PATH=VALUE with a dotted PATH such as spec.resources.cpu=1, got '{s}'")),
    }
}

/// A `--set` value read like a YAML scalar: `null` removes the key, a whole number is a
/// number (`batch_timeout`), anything else is a string.
fn scalar(value: &str) -> Value {
    if value == "null" {
        return Value::Null;
    }
    // `+1` and `007` are not how numbers are written in YAML documents; they stay text.
    let unusual = value.starts_with('+') || (value.len() > 1 && value.starts_with('0'));
    match value.parse::<i64>() {
        Ok(n) if !unusual => Value::from(n),
        _ => Value::String(value.to_owned()),
    }
}

/// Puts `value` at `path`, creating mappings on the way; fails when the way passes through a
/// value another flag already set.
fn insert(root: &mut Map<String, Value>, path: &[&str], value: Value, flag: &str) -> Result<(), ClientError> {
    let Some((last, parents)) = path.split_last() else { return Ok(()) };
    let mut node = root;
    for (i, key) in parents.iter().enumerate() {
        let entry = node.entry((*key).to_owned()).or_insert_with(|| Value::Object(Map::new()));
        node = match entry {
            Value::Object(m) => m,
            other => {
                let at = path[..=i].join(".");
                return Err(ClientError::Input(format!(
                    "{flag}: '{at}' is already set to {other} by another flag; it cannot also have keys"
                )));
            }
        };
    }
    node.insert((*last).to_owned(), value);
    Ok(())
}

impl OverrideFlags {
    /// The `overrides` document (`{}` when no flag was given).
    pub fn build(&self) -> Result<Value, ClientError> {
        let mut root = Map::new();
        for (path, value) in &self.set {
            let keys: Vec<&str> = path.split('.').collect();
            insert(&mut root, &keys, scalar(value), &format!("--set {path}"))?;
        }
        for (key, value) in &self.env {
            let path = [&ENVIRON[..], &[key.as_str()]].concat();
            insert(&mut root, &path, Value::String(value.clone()), &format!("--env {key}"))?;
        }
        for key in &self.unset_env {
            let path = [&ENVIRON[..], &[key.as_str()]].concat();
            insert(&mut root, &path, Value::Null, &format!("--unset-env {key}"))?;
        }
        Ok(Value::Object(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn flags_become_one_overrides_document() {
        let rows: [(&str, OverrideFlags, Value); 4] = [
            ("nothing", OverrideFlags::default(), json!({})),
            (
                "env set, emptied and removed",
                OverrideFlags {
                    env: pairs(&[("A", "1"), ("B", ""), ("A", "2")]),
                    unset_env: vec!["C".into()],
                    ..OverrideFlags::default()
                },
                json!({"spec": {"kernel": {"environ": {"A": "2", "B": "", "C": null}}}}),
            ),
            (
                "set paths with scalars",
                OverrideFlags {
                    set: pairs(&[
                        ("spec.resources.cpu", "500m"),
                        ("spec.batch_timeout", "600"),
                        ("spec.mounts.scratch", "null"),
                        ("spec.kernel.image", "corral-test/busybox"),
                        ("spec.kernel.environ.ZIP", "02134"),
                    ]),
                    env: pairs(&[("A", "1")]),
                    ..OverrideFlags::default()
                },
                json!({"spec": {
                    "resources": {"cpu": "500m"}, "batch_timeout": 600, "mounts": {"scratch": null},
                    "kernel": {"image": "corral-test/busybox", "environ": {"ZIP": "02134", "A": "1"}}
                }}),
            ),
            (
                "the later flag wins on the same key",
                OverrideFlags { env: pairs(&[("A", "1")]), unset_env: vec!["A".into()], ..OverrideFlags::default() },
                json!({"spec": {"kernel": {"environ": {"A": null}}}}),
            ),
        ];
        for (name, flags, want) in rows {
            assert_eq!(flags.build().expect(name), want, "{name}");
        }
    }

    #[test]
    fn a_path_through_a_value_is_refused() {
        let flags = OverrideFlags {
            set: pairs(&[("spec.kernel.environ", "null")]),
            env: pairs(&[("A", "1")]),
            ..OverrideFlags::default()
        };
        let e = flags.build().expect_err("environ is null and has a key").to_string();
        assert!(e.starts_with("--env A: 'spec.kernel.environ' is already set to null"), "{e}");
    }

    #[test]
    fn set_arguments_and_scalars() {
        assert_eq!(parse_set("spec.resources.cpu=1"), Ok(("spec.resources.cpu".into(), "1".into())));
        assert_eq!(parse_set("a=b=c"), Ok(("a".into(), "b=c".into())));
        for bad in ["=1", "spec..cpu=1", "spec.cpu", ".a=1"] {
            assert!(parse_set(bad).is_err(), "{bad}");
        }
        assert_eq!(scalar("null"), Value::Null);
        assert_eq!(scalar("600"), json!(600));
        assert_eq!(scalar("-1"), json!(-1));
        for text in ["", "0.5", "4g", "+1", "007", "Null", "true"] {
            assert_eq!(scalar(text), json!(text), "{text}");
        }
    }
}
