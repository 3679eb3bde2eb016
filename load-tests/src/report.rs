//! Results on disk: per run a JSON file and a markdown summary under `results/`, and the
//! latest summary of each scenario kept in one section of `RESULTS.md`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::facts::Facts;

/// Everything one run produced.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub scenario: String,
    /// The command that reproduces the run.
    pub command: String,
    pub facts: Facts,
    /// CPU used by compilers (other users' builds) while the run went on.
    pub compile_load: Option<crate::compile_load::CompileLoad>,
    pub duration_s: f64,
    /// The scenario's parameters (sizes, concurrency, mode).
    pub params: serde_json::Value,
    /// The scenario's figures.
    pub results: serde_json::Value,
    /// The markdown summary (also written next to the JSON).
    #[serde(skip)]
    pub markdown: String,
}

impl RunReport {
    /// The full markdown document of the run: heading, command, figures, machine facts.
    pub fn markdown_section(&self) -> String {
        format!(
            "## {}\n\nCommand:\n\n```sh\n{}\n```\n\n{}\n\n### Machine\n\n{}{}",
            self.scenario,
            self.command,
            self.markdown.trim_end(),
            self.facts.markdown(),
            self.compile_load.map(|c| c.markdown()).unwrap_or_default()
        )
    }
}

/// Where results go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub results_dir: PathBuf,
    pub results_md: PathBuf,
}

/// Writes `<dir>/<scenario>-<timestamp>.{json,md}` and refreshes the scenario's section of
/// the results file. Returns the two paths written.
pub fn write(report: &RunReport, dest: &Destination) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(&dest.results_dir).with_context(|| format!("creating {}", dest.results_dir.display()))?;
    let stamp = file_stamp();
    let base = dest.results_dir.join(format!("{}-{stamp}", report.scenario));
    let json_path = base.with_extension("json");
    let md_path = base.with_extension("md");
    let json = serde_json::to_string_pretty(report).context("serialising the report")?;
    std::fs::write(&json_path, json + "\n").with_context(|| format!("writing {}", json_path.display()))?;
    let section = report.markdown_section();
    std::fs::write(&md_path, format!("{section}\n")).with_context(|| format!("writing {}", md_path.display()))?;
    refresh_results_md(&dest.results_md, &report.scenario, &section, &md_path)?;
    Ok((json_path, md_path))
}

fn file_stamp() -> String {
    let fmt = time::macros::format_description!("[year][month][day]-[hour][minute][second]");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_else(|_| "unknown-time".into())
}

const TITLE: &str = "# Corral load-test results\n\n\
Latest figures of each scenario, refreshed by every run of `corral-load` (see `README.md` \
in this directory for what each scenario measures and how to read it). Every run also \
leaves its own JSON and markdown files under `results/`.\n";

fn begin_marker(scenario: &str) -> String {
    format!("<!-- corral-load:{scenario}:begin -->")
}

fn end_marker(scenario: &str) -> String {
    format!("<!-- corral-load:{scenario}:end -->")
}

fn refresh_results_md(path: &Path, scenario: &str, section: &str, run_file: &Path) -> anyhow::Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file_name = run_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let body = format!("{section}\nThis run: `results/{file_name}` (and `.json`).\n");
    let new = replace_section(&old, scenario, &body);
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

/// Replaces the text between the scenario's markers, or appends a marked section. Other
/// sections and any text outside markers are kept as they are.
pub fn replace_section(doc: &str, scenario: &str, body: &str) -> String {
    let (begin, end) = (begin_marker(scenario), end_marker(scenario));
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    if let (Some(b), Some(e)) = (doc.find(&begin), doc.find(&end))
        && b < e
    {
        return format!("{}{block}{}", &doc[..b], &doc[e + end.len()..]);
    }
    let mut out = if doc.trim().is_empty() { TITLE.to_string() } else { doc.trim_end().to_string() + "\n" };
    out.push('\n');
    out.push_str(&block);
    out.push('\n');
    out
}

/// Options whose values are secrets: they never reach a report.
const SECRET_OPTIONS: [&str; 2] = ["--token", "--jwt-secret"];

/// The arguments, shell-quoted, with the values of secret options replaced by `"$SECRET"`.
pub fn redact(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        if hide_next {
            out.push("\"$SECRET\"".to_string());
            hide_next = false;
        } else if let Some(opt) = SECRET_OPTIONS.iter().find(|o| arg.starts_with(&format!("{o}="))) {
            out.push(format!("{opt}=\"$SECRET\""));
        } else {
            hide_next = SECRET_OPTIONS.contains(&arg.as_str());
            out.push(shell_quote(arg));
        }
    }
    out
}

/// Quotes an argument for a POSIX shell when it needs it.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '%'));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_document_gets_a_title_and_the_section() {
        let doc = replace_section("", "pipeline", "## pipeline\n1 pod/s\n");
        assert!(doc.starts_with("# Corral load-test results"), "{doc}");
        assert!(
            doc.contains(
                "<!-- corral-load:pipeline:begin -->\n## pipeline\n1 pod/s\n<!-- corral-load:pipeline:end -->"
            )
        );
    }

    #[test]
    fn a_section_is_replaced_in_place_and_others_are_kept() {
        let doc = replace_section("", "a", "old a");
        let doc = replace_section(&doc, "b", "b text");
        let doc = replace_section(&doc, "a", "new a");
        assert!(!doc.contains("old a"), "{doc}");
        let a = doc.find("new a").expect("a present");
        let b = doc.find("b text").expect("b present");
        assert!(a < b, "a stays where it was: {doc}");
        assert_eq!(doc.matches("corral-load:a:begin").count(), 1);
    }

    #[test]
    fn secrets_never_reach_the_command_line_of_a_report() {
        let args: Vec<String> =
            ["--url", "http://h:1", "--jwt-secret", "s3cret", "--token=abc", "pipeline"].map(String::from).to_vec();
        let shown = redact(&args).join(" ");
        assert!(!shown.contains("s3cret") && !shown.contains("abc"), "{shown}");
        assert_eq!(shown, r#"--url http://h:1 --jwt-secret "$SECRET" --token="$SECRET" pipeline"#);
    }

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--pods"), "--pods");
        assert_eq!(shell_quote("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
