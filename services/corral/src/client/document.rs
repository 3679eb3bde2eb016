//! Documents for `corral sesstpl create|update`: from a file, from stdin with `-f -`, or from
//! stdin itself when it is piped (`corral sesstpl create < template.yaml`, as users of
//! `backend.ai sesstpl` are used to). Sent as JSON or YAML by what they look like; the server
//! checks them and lists every problem.

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;

use super::api::{ClientError, Payload, YAML};

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source<'a> {
    Stdin,
    File(&'a Path),
}

/// `-f FILE`, `-f -`, or stdin when no file is given and stdin is not a terminal (nobody is
/// going to type a template at a prompt; a hint is more useful).
fn source<'a>(file: Option<&'a Path>, stdin_is_terminal: bool, example: &str) -> Result<Source<'a>, ClientError> {
    match file {
        Some(p) if p == Path::new("-") => Ok(Source::Stdin),
        Some(p) => Ok(Source::File(p)),
        None if stdin_is_terminal => Err(ClientError::Input(format!(
            "no session template given: pass -f FILE (YAML or JSON), or pipe it in: {example} < template.yaml"
        ))),
        None => Ok(Source::Stdin),
    }
}

/// A document as read, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub content_type: &'static str,
    pub text: String,
}

impl Document {
    pub fn payload(&self) -> Payload<'_> {
        Payload::Text { content_type: self.content_type, text: self.text.clone() }
    }
}

/// JSON for `.json` files and text that starts with `{`; YAML otherwise (YAML is what
/// Backend.AI users bring, and a `.yaml` file may well hold flow-style YAML).
fn media_type(path: Option<&Path>, text: &str) -> &'static str {
    let ext = path.and_then(Path::extension).and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => "application/json",
        Some("yaml" | "yml") => YAML,
        _ if text.trim_start().starts_with('{') => "application/json",
        _ => YAML,
    }
}

fn checked(text: String, origin: &str, path: Option<&Path>) -> Result<Document, ClientError> {
    if text.trim().is_empty() {
        return Err(ClientError::Input(format!(
            "{origin} is empty: expected a session template (kind: taskTemplate) in YAML or JSON"
        )));
    }
    Ok(Document { content_type: media_type(path, &text), text })
}

/// Reads the document for `example` (`corral sesstpl create`, used in the hint).
pub fn read(file: Option<&Path>, example: &str) -> Result<Document, ClientError> {
    match source(file, std::io::stdin().is_terminal(), example)? {
        Source::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| ClientError::Input(format!("cannot read the session template from stdin: {e}")))?;
            checked(text, "stdin", None)
        }
        Source::File(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ClientError::Input(format!("cannot read {}: {e}", path.display())))?;
            checked(text, &path.display().to_string(), Some(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_documents_come_from() {
        let f = Path::new("t.yaml");
        let rows: [(Option<&Path>, bool, Option<Source<'_>>); 5] = [
            (Some(f), true, Some(Source::File(f))),
            (Some(f), false, Some(Source::File(f))),
            (Some(Path::new("-")), true, Some(Source::Stdin)),
            (None, false, Some(Source::Stdin)),
            (None, true, None),
        ];
        for (file, tty, want) in rows {
            let got = source(file, tty, "corral sesstpl create");
            match want {
                Some(w) => assert_eq!(got.expect("a source"), w, "{file:?} tty={tty}"),
                None => {
                    let e = got.expect_err("a terminal is not a document").to_string();
                    assert!(e.contains("-f FILE") && e.contains("corral sesstpl create < template.yaml"), "{e}");
                }
            }
        }
    }

    #[test]
    fn media_types_by_extension_then_content() {
        let rows = [
            (Some("t.json"), "kind: x", "application/json"),
            (Some("t.JSON"), "kind: x", "application/json"),
            (Some("t.yml"), "{kind: x}", YAML),
            (Some("t.yaml"), "---\nkind: x", YAML),
            (Some("template"), "  {\"kind\": 1}", "application/json"),
            (None, "api_version: v1", YAML),
            (None, "\n{\"kind\": 1}", "application/json"),
        ];
        for (path, text, want) in rows {
            assert_eq!(media_type(path.map(Path::new), text), want, "{path:?} {text:?}");
        }
    }

    #[test]
    fn empty_documents_are_refused_before_sending() {
        let e = checked(" \n".into(), "stdin", None).expect_err("empty");
        assert!(e.to_string().starts_with("stdin is empty"), "{e}");
        let d = checked("kind: taskTemplate\n".into(), "t.yaml", Some(Path::new("t.yaml"))).expect("a document");
        assert_eq!(d.content_type, YAML);
    }
}
