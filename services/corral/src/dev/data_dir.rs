//! The dev data directory: where it is by default, the lock that gives one `corral dev` sole
//! use of it, and the token secret kept in it so dev tokens survive restarts.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

const LOCK_FILE: &str = "dev.lock";
const SECRET_FILE: &str = "dev-secret";
/// The store file inside the data directory.
pub const STORE_FILE: &str = "store.redb";
/// The process runtime's state directory inside the data directory.
pub const PROCESS_DIR: &str = "process";

/// `$XDG_DATA_HOME/corral`, else `~/.local/share/corral`.
pub fn default_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(xdg) = non_empty("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("corral"));
    }
    non_empty("HOME").map(|home| PathBuf::from(home).join(".local").join("share").join("corral"))
}

/// Sole use of a data directory for as long as it is held (an OS file lock, so it is
/// released even when the process is killed).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Creates the directory if needed and locks it.
    pub fn lock(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("creating the data directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { path: path.to_owned(), _lock: file }),
            Err(TryLockError::WouldBlock) => {
                anyhow::bail!("another `corral dev` is already using {} (choose another --data-dir)", path.display())
            }
            Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", lock_path.display())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn store_file(&self) -> PathBuf {
        self.path.join(STORE_FILE)
    }

    pub fn process_dir(&self) -> PathBuf {
        self.path.join(PROCESS_DIR)
    }

    /// The token secret of this data directory, generated on first use.
    pub fn secret(&self) -> anyhow::Result<String> {
        load_or_create_secret(&self.path.join(SECRET_FILE))
    }
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_owned();
            anyhow::ensure!(
                secret.len() >= 16,
                "{} holds fewer than 16 bytes; delete it to get a new secret (tokens issued with the old one stop working)",
                path.display()
            );
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Two v4 UUIDs: 244 random bits from the OS generator, as 64 hex characters.
            let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            writeln!(f, "{secret}").with_context(|| format!("writing {}", path.display()))?;
            f.sync_all().with_context(|| format!("writing {}", path.display()))?;
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn default_dir_prefers_xdg_then_home() {
        let both = [("XDG_DATA_HOME", "/x"), ("HOME", "/h")];
        assert_eq!(default_dir(env(&both)), Some(PathBuf::from("/x/corral")));
        let home = [("XDG_DATA_HOME", ""), ("HOME", "/h")];
        assert_eq!(default_dir(env(&home)), Some(PathBuf::from("/h/.local/share/corral")));
        assert_eq!(default_dir(env(&[])), None);
    }

    #[test]
    fn the_secret_is_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = DataDir::lock(dir.path()).expect("lock");
        let first = data.secret().expect("create");
        assert_eq!(first.len(), 64);
        assert_eq!(data.secret().expect("reload"), first);
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE)).expect("meta");
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    }

    #[test]
    fn a_short_secret_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(SECRET_FILE), "short\n").expect("write");
        let data = DataDir::lock(dir.path()).expect("lock");
        let err = data.secret().expect_err("too short");
        assert!(err.to_string().contains("fewer than 16 bytes"), "{err}");
    }

    #[test]
    fn a_second_lock_on_the_same_directory_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let _held = DataDir::lock(dir.path()).expect("first lock");
        let err = DataDir::lock(dir.path()).expect_err("second lock");
        assert!(err.to_string().contains("already using"), "{err}");
    }
}
