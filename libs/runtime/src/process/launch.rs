//! Starting a pod's command as a local process group, and the reaper task that records its
//! exit code.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;
use tracing::Instrument;

use super::procfs;
use super::state::{self, OUTPUT_FILE, Record, WORK_DIR, io_err};
use crate::{ContainerSpec, RuntimeError};

/// Output kept per container before older output is dropped.
const OUTPUT_CAP_BYTES: u64 = 8 * 1024 * 1024;
const TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// Environment entry naming the container directory a process belongs to.
const MARKER_ENV: &str = "CORRAL_PROCESS_CONTAINER";
/// PATH given to commands when the host process has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Environment entry holding the work directory, under which file trees are re-rooted.
pub const ROOT_ENV: &str = "CORRAL_ROOT";
/// Written in the container directory once its file trees are in place: a relaunch of the
/// same container keeps what the previous run changed, as a restarted Docker container does.
const FILES_PLACED: &str = "files.placed";

/// Command and arguments to exec (no shell in between).
pub(super) fn argv(spec: &ContainerSpec) -> Result<Vec<String>, RuntimeError> {
    let argv: Vec<String> = spec.command.iter().flatten().chain(spec.args.iter().flatten()).cloned().collect();
    if spec.command.as_ref().is_none_or(Vec::is_empty) || argv.first().is_none_or(String::is_empty) {
        return Err(RuntimeError::Invalid("the process runtime needs a command".into()));
    }
    Ok(argv)
}

/// `PORT` for the default entry and `PORT_<NAME>` for every entry (upper-cased, other
/// characters turned into `_`).
pub(super) fn port_env(ports: &BTreeMap<String, u16>) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (name, port) in ports {
        let key: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
        env.insert(format!("PORT_{key}"), port.to_string());
        if name == "default" {
            env.insert("PORT".to_owned(), port.to_string());
        }
    }
    env
}

fn now_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Starts the command in its own process group with output appended to `output.log`,
/// records it in `info.json` and leaves a reaper task waiting for it.
/// `sweep`: look for untracked processes of an interrupted launch first (a scan of every
/// process's environment, so only when the container directory existed before).
pub(super) fn launch(dir: &Path, id: &str, spec: &ContainerSpec, sweep: bool) -> Result<Record, RuntimeError> {
    let argv = argv(spec)?;
    let ports = super::ports::allocate_ports(spec)?;
    let work = dir.join(WORK_DIR);
    std::fs::create_dir_all(&work).map_err(|e| io_err("creating the work directory", &e))?;
    place_files(dir, &work, spec)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(OUTPUT_FILE))
        .map_err(|e| io_err("opening the output file", &e))?;
    let log_err = log.try_clone().map_err(|e| io_err("opening the output file", &e))?;

    // A launcher killed between starting the process and saving its record leaves a process
    // nobody tracks; it carries this marker, so the next launch of the same container finds
    // it and removes it instead of running a second copy.
    let marker = format!("{MARKER_ENV}={}", dir.display());
    let swept = if sweep { procfs::kill_groups_with_env(&marker) } else { 0 };
    if swept > 0 {
        tracing::warn!(container = id, groups = swept, "removed untracked processes of an interrupted launch");
    }
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        // The host environment may hold secrets: pass only PATH and HOME, then the pod's own.
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()))
        .env("HOME", &work)
        .env(ROOT_ENV, &work)
        .envs(&spec.env)
        .envs(port_env(&ports))
        .env(MARKER_ENV, dir.as_os_str())
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        // Own group, so removal can signal everything the command started.
        .process_group(0)
        // The process outlives a restarting spawner, which adopts it from the state directory.
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RuntimeError::Invalid(format!("command '{}' not found", argv[0])),
        _ => io_err(&format!("starting '{}'", argv[0]), &e),
    })?;
    let pid = child.id().ok_or_else(|| RuntimeError::Other("the started process has no pid".into()))?;
    // Not yet reaped (we hold the Child), so /proc/<pid> exists even if it already exited.
    let start_ticks = procfs::stat(pid).map(|s| s.start_ticks).unwrap_or_default();
    let record = Record {
        id: id.to_owned(),
        pod: spec.pod.clone(),
        generation: spec.generation,
        instance: spec.instance,
        image: spec.image.clone(),
        command: argv,
        ports,
        pid,
        start_ticks,
        started_at: now_millis(),
    };
    let saved = state::save(dir, &record);
    if saved.is_err() {
        // Untracked, it could never be removed: better not to run it at all.
        let _ = child.start_kill();
    }
    let span = tracing::info_span!("process_reaper", container = id, pid);
    tokio::spawn(reap_child(child, dir.to_owned(), pid).instrument(span));
    saved.map(|()| record)
}

/// Copies the spec's file trees into `work`, re-rooted (`/home/work/src` becomes
/// `<work>/home/work/src`), once per container.
fn place_files(dir: &Path, work: &Path, spec: &ContainerSpec) -> Result<(), RuntimeError> {
    if spec.files.is_empty() || dir.join(FILES_PLACED).exists() {
        return Ok(());
    }
    for tree in &spec.files {
        let target = tree.destination_segments()?.iter().fold(work.to_path_buf(), |p, s| p.join(s));
        copy_tree(&tree.source, &target).map_err(|e| io_err(&format!("copying files to {}", tree.destination), &e))?;
    }
    std::fs::write(dir.join(FILES_PLACED), b"").map_err(|e| io_err("recording the placed files", &e))
}

/// Copies a directory tree; symbolic links are recreated, not followed; other special files
/// are skipped. Existing files are overwritten (an interrupted copy is simply redone).
pub(super) fn copy_tree(source: &Path, target: &Path) -> std::io::Result<()> {
    if !std::fs::metadata(source)?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a directory", source.display()),
        ));
    }
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let to = target.join(entry.file_name());
        // Never write through a link left by an earlier, interrupted copy.
        if std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_symlink()) {
            std::fs::remove_file(&to)?;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// Waits for the child, keeping its output under the cap meanwhile, then records the exit
/// code (128 + signal when it was killed, as a shell reports it).
async fn reap_child(mut child: Child, dir: PathBuf, pid: u32) {
    let mut trim = tokio::time::interval(TRIM_INTERVAL);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = trim.tick() => {
                let path = dir.join(OUTPUT_FILE);
                let trimmed = tokio::task::spawn_blocking(move || state::trim_output(&path, OUTPUT_CAP_BYTES)).await;
                if let Ok(Err(e)) = trimmed && e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(error = %e, "could not trim output");
                }
            }
        }
    };
    let code = match status {
        Ok(s) => s.code().map(i64::from).or_else(|| s.signal().map(|sig| 128 + i64::from(sig))),
        Err(e) => {
            tracing::warn!(error = %e, "waiting for the process failed");
            None
        }
    };
    tracing::debug!(?code, "process exited");
    if let Some(code) = code {
        state::write_exit_code(&dir, pid, code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_variables_name_every_entry() {
        let env = port_env(&BTreeMap::from([("default".to_owned(), 4000), ("metrics-http".to_owned(), 4001)]));
        assert_eq!(env["PORT"], "4000");
        assert_eq!(env["PORT_DEFAULT"], "4000");
        assert_eq!(env["PORT_METRICS_HTTP"], "4001");
        assert_eq!(env.len(), 3);
    }
}
