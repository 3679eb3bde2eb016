//! A bash session fed README blocks one at a time, the way a reader pastes them into one
//! terminal: variables and aliases carry over from block to block. Unlike a terminal it
//! stops at the first failing command (`set -e`, `pipefail`) and treats an HTTP error from
//! `curl` as a failure. Its processes form one process group, killed when the session drops.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PRELUDE: &str = r#"set -euo pipefail
shopt -s expand_aliases
exec 9>>"$CORRAL_README_TRACE"
BASH_XTRACEFD=9
# An HTTP error fails the block, unless the command chose how to fail itself (-f).
curl() {
  local - a
  set +x
  for a in "$@"; do
    case $a in --fail|--fail-with-body|-[!-]*f*) command curl "$@"; return;; esac
  done
  command curl --fail-with-body "$@"
}
set -x
"#;

pub struct Session {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    out: PathBuf,
    trace: PathBuf,
    blocks: usize,
    /// bash's pid, which is also its process group's id.
    pgid: u32,
    /// Every process of the group has exited.
    ended: bool,
}

impl Session {
    /// A fresh `bash` in `cwd` with `env` on top of this process's environment minus every
    /// `CORRAL_*` variable (the README sets the ones it needs). Output goes to files in `dir`.
    pub fn start(dir: &Path, cwd: &Path, env: &[(&str, &str)]) -> Session {
        let out = dir.join("session.out");
        let trace = dir.join("session.trace");
        let file = std::fs::File::create(&out).expect("create the session output");
        let err = file.try_clone().expect("clone the session output");
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc"]).current_dir(cwd);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CORRAL_")) {
            cmd.env_remove(k);
        }
        cmd.env("CORRAL_README_TRACE", &trace).env("RUST_LOG", "warn").envs(env.iter().copied());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.stdin(Stdio::piped()).stdout(file).stderr(err).spawn().expect("start bash");
        let stdin = child.stdin.take();
        let pgid = child.id();
        let mut s = Session { child: Some(child), stdin, out, trace, blocks: 0, pgid, ended: false };
        s.write(PRELUDE);
        s
    }

    fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("session open");
        if let Err(e) = stdin.write_all(text.as_bytes()).and_then(|()| stdin.flush()) {
            panic!("writing to the session failed ({e}); it ended:\n{}", self.transcript());
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The session's output and the commands it ran (its `set -x` trace), for failures.
    pub fn transcript(&self) -> String {
        let tail = |s: String| {
            let cut = s.char_indices().rev().nth(6_000).map_or(0, |(i, _)| i);
            s[cut..].to_owned()
        };
        let trace = std::fs::read_to_string(&self.trace).unwrap_or_default();
        format!("--- output ---\n{}\n--- commands run ---\n{}", tail(self.output()), tail(trace))
    }

    /// Runs one block and returns what it printed. Panics with the transcript when a command
    /// fails or the block is still running after `within`.
    #[track_caller]
    pub fn run(&mut self, block: &str, within: Duration) -> String {
        self.blocks += 1;
        let marker = format!("::readme block {} done::", self.blocks);
        let from = self.output().len();
        self.write(&format!("{block}\nprintf '%s\\n' '{marker}'\n"));
        let deadline = Instant::now() + within;
        loop {
            let out = self.output();
            if let Some(end) = out[from.min(out.len())..].find(&marker) {
                return out[from..from + end].to_owned();
            }
            let exited = self.child.as_mut().and_then(|c| c.try_wait().expect("poll bash"));
            if let Some(status) = exited {
                panic!("a README command failed (bash exited: {status}):\n{block}\n{}", self.transcript());
            }
            assert!(
                Instant::now() < deadline,
                "README block still running after {within:?}:\n{block}\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the input (bash exits like a closed terminal) and waits for bash and every
    /// process it started to exit.
    #[track_caller]
    pub fn finish(&mut self, within: Duration) -> ExitStatus {
        self.stdin.take();
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.as_mut().expect("session open").try_wait().expect("poll bash") {
                break status;
            }
            assert!(Instant::now() < deadline, "bash did not exit:\n{}", self.transcript());
            std::thread::sleep(Duration::from_millis(50));
        };
        while group_alive(self.pgid) {
            assert!(
                Instant::now() < deadline,
                "processes the README started are still running {within:?} later:\n{}",
                self.transcript()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = None;
        self.ended = true;
        status
    }
}

fn group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stdin.take();
        if !self.ended {
            // Whatever the blocks left running (`&` jobs) is in bash's process group.
            let _ =
                Command::new("kill").args(["-KILL", "--", &format!("-{}", self.pgid)]).stderr(Stdio::null()).status();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
