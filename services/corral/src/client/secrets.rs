//! `corral secret …` against `/api/secrets`: named secrets of the caller (a git token that a
//! session template's `git.credential` names, for instance). The value is read from stdin or
//! typed at a prompt without echo, never taken from the command line, so it does not land in
//! shell history or `ps`; it is never printed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, IsTerminal as _, Read as _, Write as _};
use std::process::{Command, Stdio};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::api::{Api, ClientError, Payload, not_found_as, segment};
use super::args::Connection;
use super::render::{self, or_dash, text};
use super::{emit, emit_json, now_ms};

const BASE: &str = "/api/secrets";

/// `corral secret …` flags and subcommand.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: SecretCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret (create or replace). The value comes from stdin when it is piped, or is
    /// typed at a prompt that does not echo; it is never a command-line argument.
    #[command(after_long_help = "Examples:
  corral secret set git-token --username alice        # prompts for the value, without echo
  printf %s \"$GITHUB_TOKEN\" | corral secret set git-token
  corral secret set db-password < password.txt

One trailing newline of piped input is dropped (what `echo` adds). A session template uses
the secret by name: spec.kernel.git.credential: git-token")]
    Set {
        /// Secret name.
        name: String,
        /// User name stored with the secret (e.g. for git over HTTPS).
        #[arg(long)]
        username: Option<String>,
    },
    /// List your secrets: name, user name and when they were stored; never their values.
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  corral secret list\n  corral secret list --json | jq -r '.[].name'"
    )]
    List,
    /// Delete secrets.
    #[command(
        visible_alias = "rm",
        after_long_help = "Examples:\n  corral secret delete git-token\n  corral secret delete a b"
    )]
    Delete {
        /// Secret names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

fn path_of(name: &str) -> String {
    format!("{BASE}/{}", segment(name))
}

fn not_found(name: &str) -> impl FnOnce(ClientError) -> ClientError {
    not_found_as(format!("no secret '{name}'"))
}

pub async fn execute(args: SecretArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.conn.url, args.conn.token)?;
    let json = args.conn.json;
    match args.command {
        SecretCommand::Set { name, username } => {
            let value = read_value(&name).await?;
            let mut body = json!({ "value": value });
            if let Some(u) = &username {
                body["username"] = json!(u);
            }
            let answer = api.api_json(Method::PUT, &path_of(&name), Payload::Json(&body)).await?;
            if json {
                emit_json(&without_value(answer));
            } else {
                let who = username.map(|u| format!(" (username {u})")).unwrap_or_default();
                emit(&format!("secret '{name}' stored{who}\n"));
            }
        }
        SecretCommand::List => {
            let list = api.api_json(Method::GET, BASE, Payload::None).await?;
            let list = without_value(list);
            if json {
                emit_json(&list);
            } else {
                let items = list.as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    emit("No secrets yet. Store one: corral secret set NAME\n");
                } else {
                    emit(&secret_table(&items, now_ms()));
                }
            }
        }
        SecretCommand::Delete { names } => {
            let mut failed = false;
            for name in &names {
                match api.api_json(Method::DELETE, &path_of(name), Payload::None).await.map_err(not_found(name)) {
                    Ok(answer) if json => emit_json(&without_value(answer)),
                    Ok(_) => emit(&format!("secret '{name}' deleted\n")),
                    Err(e) if names.len() > 1 => {
                        eprint!("{}", super::describe(&e));
                        failed = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            if failed {
                return Err(ClientError::Input("some secrets were not deleted".into()));
            }
        }
    }
    Ok(())
}

/// Drops any `value` field: the server should never send one back, and if it ever did, the
/// CLI still would not print it.
fn without_value(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            m.remove("value");
            Value::Object(m)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(without_value).collect()),
        other => other,
    }
}

/// `5m ago` for an API timestamp (naive-UTC ISO text or epoch milliseconds), as given otherwise.
fn when(v: &Value, now_ms: i64) -> String {
    let ms = v.as_i64().or_else(|| v.as_str().and_then(render::parse_ts));
    ms.map_or_else(|| or_dash(text(v)), |ms| format!("{} ago", render::age(ms, now_ms)))
}

/// The first of `keys` that `v` has (`created_at`, or plain `created`).
fn field<'v>(v: &'v Value, keys: &[&str]) -> &'v Value {
    keys.iter().map(|k| &v[*k]).find(|x| !x.is_null()).unwrap_or(&Value::Null)
}

pub fn secret_table(items: &[Value], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|s| {
            vec![
                text(&s["name"]),
                or_dash(text(&s["username"])),
                when(field(s, &["created_at", "created"]), now_ms),
                when(field(s, &["updated_at", "updated"]), now_ms),
            ]
        })
        .collect();
    render::table(&["NAME", "USERNAME", "CREATED", "UPDATED"], &rows)
}

/// Piped input with one trailing newline (`\n` or `\r\n`) dropped.
fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// The value: all of stdin when it is not a terminal, otherwise typed at a hidden prompt.
async fn read_value(name: &str) -> Result<String, ClientError> {
    let value = if std::io::stdin().is_terminal() {
        let prompt = format!("value of secret '{name}' (not shown): ");
        let typed = tokio::task::spawn_blocking(move || prompt_hidden(&prompt));
        tokio::select! {
            typed = typed => typed
                .map_err(|e| ClientError::Input(format!("cannot read the secret value: {e}")))?
                .map_err(|e| ClientError::Input(format!(
                    "cannot prompt for the secret value ({e}); pipe it in instead: printf %s \"$VALUE\" | corral secret set {name}"
                )))?,
            _ = tokio::signal::ctrl_c() => {
                // The prompt turned echo off; give the terminal back as it was meant to be.
                let _ = tty().and_then(|t| stty(&t, &["echo"]));
                // The cursor is still on the prompt line.
                eprintln!();
                return Err(ClientError::Input("interrupted; nothing stored".into()));
            }
        }
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| ClientError::Input(format!("cannot read the secret value from stdin: {e}")))?;
        s
    };
    let value = strip_newline(value);
    if value.is_empty() {
        return Err(ClientError::Input(format!("the value of secret '{name}' is empty; nothing stored")));
    }
    Ok(value)
}

fn tty() -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).open("/dev/tty")
}

/// Runs `stty ARGS` on the terminal (no unsafe code for termios); answers its output.
fn stty(tty: &File, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("stty").args(args).stdin(tty.try_clone()?).stderr(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!("stty {} failed", args.join(" "))));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Puts the terminal's saved settings back, however the prompt ends.
struct Restore {
    tty: File,
    saved: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = stty(&self.tty, &[self.saved.as_str()]);
    }
}

/// One line typed on the terminal with echo off.
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    let mut tty = tty()?;
    let saved = stty(&tty, &["-g"])?;
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    let restore = Restore { tty: tty.try_clone()?, saved };
    stty(&tty, &["-echo"])?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    drop(restore);
    tty.write_all(b"\n")?;
    Ok(strip_newline(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped() {
        let rows =
            [("tok\n", "tok"), ("tok\r\n", "tok"), ("tok", "tok"), ("tok\n\n", "tok\n"), ("\n", ""), (" a ", " a ")];
        for (input, want) in rows {
            assert_eq!(strip_newline(input.into()), want, "{input:?}");
        }
    }

    #[test]
    fn values_are_never_shown() {
        let v = json!([{"name": "a", "value": "s3cret", "username": "u"}, {"name": "b"}]);
        assert_eq!(without_value(v), json!([{"name": "a", "username": "u"}, {"name": "b"}]));
        assert_eq!(without_value(json!({"name": "a", "value": "x"})), json!({"name": "a"}));
    }

    #[test]
    fn secret_tables_show_name_user_and_times() {
        let now = render::parse_ts("2026-01-02T03:09:05.000000").expect("ts");
        let items = [
            json!({"name": "git-token", "username": "alice", "created_at": "2026-01-02T03:04:05.000000",
                "updated_at": "2026-01-02T03:09:00.000000"}),
            json!({"name": "db", "username": null, "created": now - 7_200_000, "updated": "soon"}),
        ];
        assert_eq!(
            secret_table(&items, now),
            "NAME       USERNAME  CREATED  UPDATED\n\
             git-token  alice     5m ago   5s ago\n\
             db         -         2h ago   soon\n"
        );
    }
}
