//! For the git tests: a local bare repository made in the test, and a loopback HTTP server
//! serving it over git's "dumb" protocol (plain files) behind HTTP Basic authentication.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A bare repository `repo.git` with two commits on `main`: `hello.txt` is "first version"
/// at `first` and "second version" at `second`.
pub struct BareRepo {
    pub root: PathBuf,
    pub bare: PathBuf,
    pub first: String,
    pub second: String,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl BareRepo {
    pub fn new() -> BareRepo {
        let root = std::env::temp_dir().join(format!("corral-e2e-git-{}", uuid::Uuid::new_v4().simple()));
        let work = root.join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        git(&work, &["init", "-q"]);
        std::fs::write(work.join("hello.txt"), "first version\n").expect("write");
        git(&work, &["add", "."]);
        git(&work, &["commit", "-qm", "first"]);
        let first = git(&work, &["rev-parse", "HEAD"]);
        std::fs::write(work.join("hello.txt"), "second version\n").expect("write");
        git(&work, &["commit", "-qam", "second"]);
        let second = git(&work, &["rev-parse", "HEAD"]);
        let bare = root.join("repo.git");
        git(&root, &["clone", "-q", "--bare", "work", "repo.git"]);
        // The files a dumb-protocol client reads first (info/refs, objects/info/packs).
        git(&bare, &["update-server-info"]);
        BareRepo { root, bare, first, second }
    }

    pub fn path(&self) -> String {
        self.bare.display().to_string()
    }
}

impl Drop for BareRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// One request the server answered: path and status.
pub type Served = Arc<Mutex<Vec<(String, u16)>>>;

/// Serves `<bare>` at `http://127.0.0.1:<port>/repo.git`, answering 401 unless the request
/// carries `Authorization: Basic base64(user:password)`.
pub struct DumbHttp {
    pub url: String,
    pub served: Served,
    task: tokio::task::JoinHandle<()>,
}

impl DumbHttp {
    pub async fn start(bare: &Path, user: &str, password: &str) -> DumbHttp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/repo.git", listener.local_addr().expect("addr"));
        let expected = format!("basic {}", base64(format!("{user}:{password}").as_bytes()));
        let served: Served = Arc::default();
        let (root, log) = (bare.to_path_buf(), served.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (root, expected, log) = (root.clone(), expected.clone(), log.clone());
                tokio::spawn(async move {
                    let Some((path, auth)) = read_head(&mut conn).await else { return };
                    let (status, body) = answer(&root, &path, auth.as_deref() == Some(expected.as_str()));
                    log.lock().unwrap_or_else(PoisonError::into_inner).push((path, status));
                    let reason = match status {
                        200 => "OK",
                        401 => "Unauthorized",
                        _ => "Not Found",
                    };
                    let head = format!(
                        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\
                         WWW-Authenticate: Basic realm=\"git\"\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(&body).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        DumbHttp { url, served, task }
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.served.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(_, s)| *s).collect()
    }
}

impl Drop for DumbHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The request line's path (query dropped) and the lowercased-scheme Authorization value.
async fn read_head(conn: &mut tokio::net::TcpStream) -> Option<(String, Option<String>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let target = lines.next()?.split(' ').nth(1)?.to_string();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let auth = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("authorization").then(|| {
            let v = v.trim();
            match v.split_once(' ') {
                Some((scheme, rest)) => format!("{} {}", scheme.to_ascii_lowercase(), rest.trim()),
                None => v.to_string(),
            }
        })
    });
    Some((path, auth))
}

fn answer(root: &Path, path: &str, authorized: bool) -> (u16, Vec<u8>) {
    if !authorized {
        return (401, b"authentication required\n".to_vec());
    }
    let Some(rel) = path.strip_prefix("/repo.git/") else { return (404, Vec::new()) };
    if rel.split('/').any(|s| s == ".." || s.is_empty()) {
        return (404, Vec::new());
    }
    match std::fs::read(root.join(rel)) {
        Ok(bytes) => (200, bytes),
        Err(_) => (404, Vec::new()),
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]) } else { '=' });
        }
    }
    out
}
