//! The README cannot rot: every shell command in it is either run by `readme_walkthrough`
//! or listed in `COVERED_ELSEWHERE` with the script that runs it; its configuration
//! reference lists exactly the settings of config/default.toml with their defaults; its JSON
//! examples are JSON.

mod readme_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

use readme_support::{
    BY_HAND, COVERED_ELSEWHERE, DEV_COMMAND, TWO_COMMANDS, WALKTHROUGH, blocks, commands, covered, readme, repo_root,
    sh_blocks,
};

#[test]
fn commands_are_split_following_quotes_continuations_and_comments() {
    let block =
        "# a comment\nexport A=1   # trailing\ncurl -s x \\\n  -d '{\"a\": 1,\n  \"b\": \"#x\"}'\n\nrun 'it' # done\n";
    let cmds = commands(block);
    let keys: Vec<&str> = cmds.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["export A=1", "curl -s x -d '{\"a\": 1, \"b\": \"#x\"}'", "run 'it'"]);
    assert_eq!((cmds[1].first, cmds[1].last), (2, 4));
}

#[test]
fn every_readme_command_is_run_or_covered() {
    let md = readme();
    for section in [WALKTHROUGH, BY_HAND] {
        assert!(!sh_blocks(&md, section).is_empty(), "README.md has no ```sh blocks under the heading {section:?}");
    }
    let mut uncovered = Vec::new();
    let mut used = BTreeSet::new();
    let mut dev_command = false;
    for block in blocks(&md) {
        assert!(
            matches!(block.lang.as_str(), "sh" | "json" | "text"),
            "README.md:{}: a ```{} block; commands go in ```sh blocks (checked here), pictures in ```text",
            block.line - 1,
            block.lang
        );
        if block.lang != "sh" {
            continue;
        }
        let syntax = Command::new("bash")
            .arg("-n")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().expect("stdin").write_all(block.text.as_bytes())?;
                c.wait_with_output()
            })
            .expect("run bash -n");
        assert!(
            syntax.status.success(),
            "README.md:{}: not valid shell: {}",
            block.line,
            String::from_utf8_lossy(&syntax.stderr)
        );
        for cmd in commands(&block.text) {
            if let Some(c) = covered(&cmd.key) {
                used.insert(c.command);
            } else if block.section == TWO_COMMANDS && cmd.key == DEV_COMMAND {
                dev_command = true;
            } else if block.section != WALKTHROUGH && block.section != BY_HAND {
                uncovered.push(format!("README.md:{}: {}", block.line + cmd.first, cmd.key));
            }
        }
    }
    assert!(dev_command, "README.md no longer has `{DEV_COMMAND}` under {TWO_COMMANDS:?}; the walk-through runs it");
    assert!(
        uncovered.is_empty(),
        "README commands that no test runs: move them to a section the walk-through runs, or add them to \
         readme_support::COVERED_ELSEWHERE with the script that runs them:\n{}",
        uncovered.join("\n")
    );
    for c in COVERED_ELSEWHERE {
        assert!(used.contains(c.command), "COVERED_ELSEWHERE lists `{}`, which is not in README.md", c.command);
        let path = repo_root().join(c.file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.contains(c.needle),
            "`{}` is said to be covered by {} ({}), which does not contain `{}`",
            c.command,
            c.file,
            c.why,
            c.needle
        );
    }
}

/// `section.key` → default value as written in config/default.toml.
fn default_settings() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo_root().join("config/default.toml")).expect("read config/default.toml");
    let mut section = String::new();
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            out.insert(format!("{section}.{}", key.trim()), value.trim().to_owned());
        }
    }
    out
}

/// `section.key` → default, from the README's configuration table (`` | `k` | `v` | … ``).
fn documented_settings() -> BTreeMap<String, String> {
    let md = readme();
    let start = md.find("\n## Configuration").expect("README.md has a ## Configuration section");
    let section = &md[start + 1..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let cell = |s: &str| s.trim().trim_matches('`').to_owned();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            assert!(cells.len() >= 4, "configuration table row without a default: {l}");
            (cell(cells[1]), cell(cells[2]))
        })
        .collect()
}

#[test]
fn the_configuration_reference_lists_every_setting_with_its_default() {
    let defaults = default_settings();
    assert!(defaults.len() > 20, "config/default.toml parsed to too few settings: {defaults:?}");
    let documented = documented_settings();
    let missing: Vec<_> = defaults.keys().filter(|k| !documented.contains_key(*k)).collect();
    let unknown: Vec<_> = documented.keys().filter(|k| !defaults.contains_key(*k)).collect();
    assert!(missing.is_empty(), "settings of config/default.toml missing from the README's table: {missing:?}");
    assert!(unknown.is_empty(), "README settings that config/default.toml does not have: {unknown:?}");
    for (key, value) in &defaults {
        assert_eq!(&documented[key], value, "README's default for {key}");
    }
}

#[test]
fn the_json_examples_are_json() {
    let md = readme();
    let json: Vec<_> = blocks(&md).into_iter().filter(|b| b.lang == "json").collect();
    assert!(!json.is_empty(), "the AMQP section shows its envelope as ```json");
    for b in json {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&b.text) {
            panic!("README.md:{}: not JSON ({e}):\n{}", b.line, b.text);
        }
    }
}
