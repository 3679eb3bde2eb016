//! The README's run command (`cargo run --release --bin corral -- dev`, with the test's
//! binary) as a server for the walk-through: started with the settings a reader's machine
//! would give it through the environment, its banner read, and stopped with SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BANNER_END: &str = "Ctrl-C stops every service";

pub struct DevServer {
    child: Option<Child>,
    pub banner: String,
    log: PathBuf,
}

impl DevServer {
    /// Runs `command` (a README command line, already made runnable) through bash with
    /// `env` and waits up to `within` for the banner. Its log goes to `log`.
    #[track_caller]
    pub fn start(command: &str, env: &[(&str, &str)], log: &Path, within: Duration) -> DevServer {
        let log_file = std::fs::File::create(log).expect("create the dev log");
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(format!("exec {command}"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CORRAL_")) {
            cmd.env_remove(k);
        }
        cmd.env("RUST_LOG", "warn").envs(env.iter().copied());
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file).spawn().expect("start corral dev");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Drains stdout for the server's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = DevServer { child: Some(child), banner: String::new(), log: log.to_owned() };
        let deadline = Instant::now() + within;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    server.banner.push_str(&line);
                    server.banner.push('\n');
                    if line.starts_with(BANNER_END) {
                        return server;
                    }
                }
                Err(_) => panic!(
                    "`{command}` printed no complete banner within {within:?}\nstdout:\n{}\nlog:\n{}",
                    server.banner,
                    server.log_text()
                ),
            }
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The banner's `export NAME=…` line for `name`.
    #[track_caller]
    pub fn export_line(&self, name: &str) -> String {
        let prefix = format!("export {name}=");
        self.banner
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("the banner has no `{prefix}…` line:\n{}", self.banner))
            .to_owned()
    }

    /// SIGTERM (Ctrl-C's effect), then waits for the exit.
    #[track_caller]
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for corral dev") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("corral dev did not stop within {within:?} of SIGTERM\nlog:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
