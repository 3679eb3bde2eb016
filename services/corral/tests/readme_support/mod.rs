//! The README as data for the `readme_*` tests: its fenced blocks, the shell commands in its
//! ```sh blocks, which of them the tests run and which are covered elsewhere (and where), and
//! the text substitutions that turn a README command into one that runs on the test machine.

#![allow(dead_code)]

pub mod server;
pub mod session;

use std::path::PathBuf;

/// The section whose commands run against `corral dev` (Docker and process runtimes).
pub const WALKTHROUGH: &str = "Five minutes with Corral";
/// The section whose commands run the services by hand against RabbitMQ and Redis.
pub const BY_HAND: &str = "By hand, against your own RabbitMQ and Redis";
/// The section holding the run command, and that command: the tests start it as the server.
pub const TWO_COMMANDS: &str = "The two commands";
pub const DEV_COMMAND: &str = "cargo run --release --bin corral -- dev";

/// How the README invokes the binary, and the default server address: replaced by the
/// test's binary and a free port before a command runs.
pub const CARGO_RUN: [&str; 2] = ["cargo run -q --release --bin corral --", "cargo run --release --bin corral --"];
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A README command the tests do not run, and what runs it instead: `file` (relative to the
/// repository) must contain `needle`, the form in which it runs there.
pub struct Covered {
    pub command: &'static str,
    pub file: &'static str,
    pub needle: &'static str,
    pub why: &'static str,
}

/// Every README command that is not run by the `readme_walkthrough` tests. A README command
/// that is neither run nor listed here fails `every_readme_command_is_run_or_covered`.
pub const COVERED_ELSEWHERE: &[Covered] = &[
    Covered {
        command: "scripts/test.sh",
        file: ".ci/run",
        needle: "exec scripts/test.sh",
        why: "the CI entry point runs it (and it runs these tests)",
    },
    Covered {
        command: "scripts/services.sh up",
        file: "scripts/test.sh",
        needle: "scripts/services.sh up",
        why: "the test script starts RabbitMQ and Redis before the suite",
    },
    Covered {
        command: "docker compose up -d",
        file: "scripts/compose-check.sh",
        needle: "up -d --no-build",
        why: "brings the stack up from docker-compose.yml with locally made images (no pulls here)",
    },
    Covered {
        command: "docker compose exec api-gateway corral token --tenant dev --user \"$USER\"",
        file: "scripts/compose-check.sh",
        needle: "exec -T api-gateway corral token --tenant dev --user",
        why: "takes the token for its pod from the gateway container",
    },
    Covered {
        command: "docker compose down",
        file: "scripts/compose-check.sh",
        needle: "down -v --remove-orphans",
        why: "takes the checked stack down",
    },
    Covered {
        command: "scripts/compose-check.sh",
        file: "scripts/test.sh",
        needle: "scripts/compose-check.sh",
        why: "the test script runs the compose check",
    },
];

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn readme() -> String {
    std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md")
}

/// A fenced block: its info string, the nearest heading above it, its text, and the README
/// line of its first content line (1-based).
#[derive(Debug, Clone)]
pub struct Block {
    pub lang: String,
    pub section: String,
    pub text: String,
    pub line: usize,
}

/// Every fenced block, in order.
pub fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        if let Some(block) = open.as_mut() {
            if line.trim_start().starts_with("```") {
                out.extend(open.take());
            } else {
                block.text.push_str(line);
                block.text.push('\n');
            }
        } else if let Some(info) = line.trim_start().strip_prefix("```") {
            open = Some(Block {
                lang: info.trim().to_owned(),
                section: section.clone(),
                text: String::new(),
                line: i + 2,
            });
        } else if line.starts_with('#') {
            section = line.trim_start_matches('#').trim().to_owned();
        }
    }
    assert!(open.is_none(), "README.md has an unclosed ``` block");
    out
}

/// The ```sh blocks of one section.
pub fn sh_blocks(md: &str, section: &str) -> Vec<Block> {
    blocks(md).into_iter().filter(|b| b.lang == "sh" && b.section == section).collect()
}

/// One shell command of a block: its lines (`first..=last`, 0-based within the block) and
/// its text without comments, continuation lines joined and whitespace collapsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub key: String,
    pub first: usize,
    pub last: usize,
}

/// Splits a block into commands, following quotes across lines (a JSON body in '…' spans
/// several) and `\` continuations, and dropping `#` comments.
pub fn commands(block: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut current: Option<(String, usize)> = None;
    for (i, line) in block.lines().enumerate() {
        let mut code = String::new();
        let mut prev = ' ';
        for c in line.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '#' && prev.is_whitespace() => break,
                None => {}
            }
            code.push(c);
            prev = c;
        }
        let mut code = code.trim().to_owned();
        if current.is_none() && code.is_empty() {
            continue;
        }
        let continued = quote.is_none() && code.ends_with('\\');
        if continued {
            code.pop();
        }
        let (text, first) = current.get_or_insert_with(|| (String::new(), i));
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(code.trim());
        if quote.is_none() && !continued {
            let key = text.split_whitespace().collect::<Vec<_>>().join(" ");
            out.push(Command { key, first: *first, last: i });
            current = None;
        }
    }
    assert!(current.is_none() && quote.is_none(), "unterminated command or quote in:\n{block}");
    out
}

/// The covering entry of a command, if it is covered elsewhere.
pub fn covered(key: &str) -> Option<&'static Covered> {
    COVERED_ELSEWHERE.iter().find(|c| c.command == key)
}

/// A block as the tests run it: commands covered elsewhere become `:` lines naming what
/// covers them; `cargo run … corral --` becomes the test's binary; the default address
/// becomes the test's.
pub fn runnable(block: &str, bin: &str, addr: &str) -> String {
    let cmds = commands(block);
    let lines: Vec<&str> = block.lines().collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let skipped = cmds.iter().find(|c| c.first <= i && i <= c.last).and_then(|c| covered(&c.key));
        match skipped {
            Some(c) if cmds.iter().any(|k| k.first == i) => out.push_str(&format!(": covered by {}\n", c.file)),
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for cargo_run in CARGO_RUN {
        out = out.replace(cargo_run, bin);
    }
    out.replace(DEFAULT_ADDR, addr)
}
