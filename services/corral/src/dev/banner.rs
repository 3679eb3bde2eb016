//! What `corral dev` prints once it serves: where, on which runtime, a token, and commands
//! to copy.

use std::fmt::Write as _;
use std::path::Path;

use corral_runtime::RuntimeKind;

/// Everything the banner shows.
pub struct Banner<'a> {
    pub url: &'a str,
    pub runtime: RuntimeKind,
    /// Why this runtime (detected or chosen).
    pub runtime_reason: &'a str,
    pub data_dir: &'a Path,
    pub tenant: &'a str,
    pub user: &'a str,
    pub token: &'a str,
    pub token_ttl_s: u64,
}

/// The example pod for a runtime: `(pod JSON, CLI arguments)`. The process runtime ignores
/// the image and hands the pod its port as `$PORT`; Docker runs the local test image.
fn example(runtime: RuntimeKind) -> (&'static str, &'static str) {
    match runtime {
        RuntimeKind::Docker => (
            r#"{"pod_id":"hello","image":"corral-test/busybox","command":["httpd","-f","-p","8000","-h","/www"],"networking":{"default":{"protocol":"http","port":8000}}}"#,
            "--id hello --image corral-test/busybox --port 8000 -- httpd -f -p 8000 -h /www",
        ),
        RuntimeKind::Process | RuntimeKind::Simulated => (
            r#"{"pod_id":"hello","image":"busybox","command":["sh","-c","exec busybox httpd -f -p $PORT -h /tmp"]}"#,
            "--id hello --image busybox -- sh -c 'exec busybox httpd -f -p $PORT -h /tmp'",
        ),
    }
}

fn lifetime(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => format!("{s}s"),
    }
}

impl Banner<'_> {
    pub fn render(&self) -> String {
        let (json, cli) = example(self.runtime);
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "corral dev: every service in this process (in-process bus, embedded store)");
        let _ = writeln!(s, "  url:      {}", self.url);
        let _ = writeln!(s, "  runtime:  {} ({})", self.runtime, self.runtime_reason);
        let _ = writeln!(s, "  data:     {}", self.data_dir.display());
        let _ =
            writeln!(s, "  token:    tenant {}, user {}, valid {}", self.tenant, self.user, lifetime(self.token_ttl_s));
        let _ = writeln!(s);
        let _ = writeln!(s, "Use the CLI (same binary):");
        let _ = writeln!(s, "  export CORRAL_URL={}", self.url);
        let _ = writeln!(s, "  export CORRAL_TOKEN={}", self.token);
        let _ = writeln!(s, "  corral pods create --wait {cli}");
        let _ = writeln!(s, "  corral pods list");
        let _ = writeln!(s);
        let _ = writeln!(s, "or curl:");
        let _ = writeln!(s, "  curl -s -X POST {}/v3/pods \\", self.url);
        let _ = writeln!(s, "    -H \"X-Tapis-Token: $CORRAL_TOKEN\" -H 'Content-Type: application/json' \\");
        let _ = writeln!(s, "    -d '{json}'");
        let _ = writeln!(s);
        let _ = writeln!(s, "Ctrl-C stops every service; pods keep running and are adopted on the next start.");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banner(runtime: RuntimeKind) -> String {
        Banner {
            url: "http://127.0.0.1:8080",
            runtime,
            runtime_reason: "chosen with --runtime",
            data_dir: Path::new("/data"),
            tenant: "dev",
            user: "alice",
            token: "TOKEN",
            token_ttl_s: 86_400,
        }
        .render()
    }

    #[test]
    fn shows_url_runtime_token_and_a_working_example() {
        let b = banner(RuntimeKind::Process);
        assert!(b.contains("  url:      http://127.0.0.1:8080\n"), "{b}");
        assert!(b.contains("  runtime:  process (chosen with --runtime)\n"), "{b}");
        assert!(b.contains("export CORRAL_TOKEN=TOKEN\n"), "{b}");
        assert!(b.contains("user alice, valid 1d"), "{b}");
        assert!(b.contains("curl -s -X POST http://127.0.0.1:8080/v3/pods"), "{b}");
        assert!(b.contains("exec busybox httpd -f -p $PORT"), "{b}");
    }

    #[test]
    fn the_example_pods_are_valid_json_for_each_runtime() {
        for kind in [RuntimeKind::Docker, RuntimeKind::Process] {
            let (json, _) = example(kind);
            let v: serde_json::Value = serde_json::from_str(json).expect("example is JSON");
            assert_eq!(v["pod_id"], "hello");
        }
        assert!(banner(RuntimeKind::Docker).contains("corral-test/busybox"));
    }

    #[test]
    fn lifetimes_read_naturally() {
        assert_eq!(lifetime(86_400), "1d");
        assert_eq!(lifetime(7_200), "2h");
        assert_eq!(lifetime(90), "90s");
    }
}
