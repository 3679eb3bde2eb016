//! On-disk state of the process runtime: one directory per container under
//! `<state_dir>/<namespace>/<id>/`, shared by every process that runs this runtime on the host.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use corral_model::{Millis, PodKey};
use serde::{Deserialize, Serialize};

use super::procfs;
use crate::{ContainerInfo, ContainerState, HostPort, RuntimeError};

const INFO_FILE: &str = "info.json";
const EXIT_FILE: &str = "exit_code";
pub(super) const OUTPUT_FILE: &str = "output.log";
pub(super) const WORK_DIR: &str = "work";

/// What `info.json` holds: written once per launch by the spawning process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    pub id: String,
    pub pod: PodKey,
    pub generation: u64,
    pub instance: u64,
    pub image: String,
    pub command: Vec<String>,
    /// Networking entry name → loopback port given to the process.
    pub ports: BTreeMap<String, u16>,
    /// Also the process-group id (the child leads its own group).
    pub pid: u32,
    pub start_ticks: u64,
    pub started_at: Millis,
}

pub(super) fn io_err(context: &str, err: &std::io::Error) -> RuntimeError {
    RuntimeError::Other(format!("{context}: {err}"))
}

/// Writes through a temporary file and a rename, so readers never see a partial file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub(super) fn save(dir: &Path, record: &Record) -> Result<(), RuntimeError> {
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::Other(format!("encoding state: {e}")))?;
    write_atomic(&dir.join(INFO_FILE), &bytes).map_err(|e| io_err("writing container state", &e))
}

/// The record of a container directory; None while it is being launched or once removed.
pub(super) fn load(dir: &Path) -> Option<Record> {
    serde_json::from_slice(&std::fs::read(dir.join(INFO_FILE)).ok()?).ok()
}

/// Exit code recorded for launch `pid`. The file names the launch it belongs to: the reaper of
/// an earlier launch can still be writing when a relaunch clears the file, and its late code
/// must not make the new process look exited.
pub(super) fn read_exit_code(dir: &Path, pid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(EXIT_FILE)).ok()?;
    let (owner, code) = text.trim().split_once(' ')?;
    (owner.parse::<u32>().ok()? == pid).then(|| code.parse().ok()).flatten()
}

pub(super) fn clear_exit_code(dir: &Path) -> Result<(), RuntimeError> {
    match std::fs::remove_file(dir.join(EXIT_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("clearing exit code", &e)),
        _ => Ok(()),
    }
}

/// Records the exit code of launch `pid`, unless the directory was removed or reused by a
/// later launch meanwhile (a relaunch racing this write is caught by `read_exit_code`).
pub(super) fn write_exit_code(dir: &Path, pid: u32, code: i64) {
    if load(dir).is_none_or(|r| r.pid != pid) {
        return;
    }
    if let Err(e) = write_atomic(&dir.join(EXIT_FILE), format!("{pid} {code}").as_bytes()) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not record exit code");
    }
}

/// Current state: the exit file wins; a process gone without one exited with an unknown code
/// (its spawner died before reaping it).
pub(super) fn state_of(dir: &Path, record: &Record) -> ContainerState {
    if let Some(code) = read_exit_code(dir, record.pid) {
        return ContainerState::Exited(Some(code));
    }
    if procfs::is_alive(record.pid, record.start_ticks) {
        ContainerState::Running
    } else {
        ContainerState::Exited(None)
    }
}

pub(super) fn info_of(record: &Record, state: ContainerState) -> ContainerInfo {
    ContainerInfo {
        id: record.id.clone(),
        pod: record.pod.clone(),
        generation: record.generation,
        instance: record.instance,
        state,
        ports: record
            .ports
            .iter()
            .map(|(name, port)| (name.clone(), HostPort { host: "127.0.0.1".to_owned(), port: *port }))
            .collect(),
        started_at: Some(record.started_at),
    }
}

/// Container directories of one namespace (those not yet holding a record included).
pub(super) fn entries(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(read) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        // Dot-names are directories being removed.
        .filter(|(name, _)| !name.starts_with('.'))
        .collect()
}

/// Keeps the output file under `cap` bytes by dropping its older half. The child writes in
/// append mode, so it keeps appending at the new end; bytes it writes during the rewrite may
/// be lost, which is acceptable for a development runtime.
pub(super) fn trim_output(path: &Path, cap: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = std::fs::metadata(path)?.len();
    if len <= cap {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let keep = cap / 2;
    file.seek(SeekFrom::Start(len - keep))?;
    let mut tail = Vec::with_capacity(usize::try_from(keep).unwrap_or(0));
    file.read_to_end(&mut tail)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(b"[corral: older output dropped]\n")?;
    file.write_all(&tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_keeps_the_newest_half() {
        let dir = std::env::temp_dir().join(format!("corral-trim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("out.log");
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        trim_output(&path, 400).expect("trim");
        let trimmed = std::fs::read(&path).expect("read");
        assert!(trimmed.starts_with(b"[corral: older output dropped]\n"));
        assert!(trimmed.ends_with(&data[800..]));
        trim_output(&path, 10_000).expect("no-op");
        assert_eq!(std::fs::read(&path).expect("read"), trimmed);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn an_exit_code_counts_only_for_the_launch_that_wrote_it() {
        let dir = std::env::temp_dir().join(format!("corral-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // What a late reaper of launch 10 leaves behind after launch 20 took the directory.
        std::fs::write(dir.join(EXIT_FILE), "10 3").expect("write");
        assert_eq!(read_exit_code(&dir, 10), Some(3));
        assert_eq!(read_exit_code(&dir, 20), None);
        std::fs::write(dir.join(EXIT_FILE), "garbage").expect("write");
        assert_eq!(read_exit_code(&dir, 10), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
