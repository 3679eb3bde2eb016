//! `corral secret …` against a real `corral dev` (process runtime): a value read from stdin is
//! stored, listed by name only, and deleted; it never appears in the CLI's output, nor in the
//! server's log.

mod dev_support;

use std::process::Output;

use dev_support::{Dev, ProcessCleanup, ok, stderr, stdout};
use serde_json::Value;

const VALUE: &str = "s3cr3t-value-for-the-cli-test";

#[track_caller]
fn no_value(out: &Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.contains(VALUE), "the secret value was printed:\n{text}");
    }
}

#[test]
fn secrets_are_set_from_stdin_listed_by_name_and_deleted() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    let _cleanup = ProcessCleanup(data.clone());
    let mut dev = Dev::start(&data, &["--runtime", "process"], &[]);

    let set = dev.cli_stdin(&["secret", "set", "git-token", "--username", "alice"], &format!("{VALUE}\n"));
    assert_eq!(ok(&set), "secret 'git-token' stored (username alice)\n");
    no_value(&set);
    let set = dev.cli_stdin(&["secret", "set", "db-password", "--json"], VALUE);
    no_value(&set);
    let answer: Value = serde_json::from_str(&ok(&set)).expect("--json is JSON");
    assert!(answer.get("value").is_none(), "{answer}");

    let list = dev.cli(&["secret", "list"]);
    no_value(&list);
    let text = ok(&list);
    let header = text.lines().next().expect("a header");
    assert_eq!(header.split_whitespace().collect::<Vec<_>>(), ["NAME", "USERNAME", "CREATED", "UPDATED"]);
    let row = text.lines().find(|l| l.starts_with("git-token ")).unwrap_or_else(|| panic!("{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], "alice", "{row}");
    assert!(cells[2].ends_with('s') && cells[3] == "ago" && row.ends_with(" ago"), "times as ages: {row}");
    assert!(text.lines().any(|l| l.starts_with("db-password ")), "{text}");
    let listed = dev.cli(&["secret", "list", "--json"]);
    no_value(&listed);
    let names: Vec<String> = serde_json::from_str::<Value>(&ok(&listed))
        .expect("--json is JSON")
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(names, ["db-password", "git-token"]);

    // An empty value is refused before anything is sent.
    let empty = dev.cli_stdin(&["secret", "set", "blank"], "\n");
    assert_eq!(empty.status.code(), Some(1));
    assert_eq!(stderr(&empty), "error: the value of secret 'blank' is empty; nothing stored\n");

    assert_eq!(ok(&dev.cli(&["secret", "delete", "git-token"])), "secret 'git-token' deleted\n");
    let again = dev.cli(&["secret", "delete", "git-token"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again), "error: no secret 'git-token'\n");
    let text = ok(&dev.cli(&["secret", "list"]));
    assert!(!text.contains("git-token") && text.contains("db-password"), "{text}");
    ok(&dev.cli(&["secret", "delete", "db-password"]));
    assert!(ok(&dev.cli(&["secret", "list"])).starts_with("No secrets yet"));

    let status = dev.terminate();
    assert!(status.success(), "clean shutdown: {status}");
    assert!(!dev.log_text().contains(VALUE), "the secret value is in the server log");
}
