//! Output tailing for the process runtime. A child writes `output.log` itself, so the file is
//! polled: one blocking call per poll (file kept open, read at the offset, launch checked only
//! when nothing new came), and an idle container is polled less and less often, down to once
//! per [`IDLE_POLL_MAX`]. A pool of idle servers then costs a few polls per second in all
//! instead of ten file opens and a record parse per server per second.

use std::fs::File;
use std::os::unix::fs::{FileExt as _, MetadataExt as _};
use std::path::PathBuf;
use std::time::Duration;

use futures::stream::{BoxStream, StreamExt};

use super::procfs;
use super::state::{self, OUTPUT_FILE};
use crate::{ContainerState, OutputChunk};

/// The wait after output (and before the first idle poll).
const FIRST_POLL: Duration = Duration::from_millis(100);
/// The longest wait between two polls of an idle container.
const IDLE_POLL_MAX: Duration = Duration::from_secs(1);
const CHUNK_BYTES: u64 = 64 * 1024;

/// The wait before the next poll: the shortest after output, doubling while idle.
fn next_wait(current: Duration, got_output: bool) -> Duration {
    if got_output { FIRST_POLL } else { current.saturating_mul(2).clamp(FIRST_POLL, IDLE_POLL_MAX) }
}

/// What one poll found.
#[derive(Debug, PartialEq, Eq)]
enum Poll {
    Bytes(Vec<u8>),
    /// Nothing new; the container still runs.
    Idle,
    /// Nothing more will come (exited and drained, removed, or not following).
    End,
}

struct Tail {
    dir: PathBuf,
    follow: bool,
    /// The output file and its inode: a relaunch may replace the file.
    file: Option<(File, u64)>,
    offset: u64,
    /// The launch last seen running (pid, start ticks), so an idle poll reads no record.
    launch: Option<(u32, u64)>,
    wait: Duration,
}

impl Tail {
    /// The next bytes from the current offset (empty at the end).
    fn read_more(&mut self) -> std::io::Result<Vec<u8>> {
        let path = self.dir.join(OUTPUT_FILE);
        let meta = std::fs::metadata(&path)?;
        let file = match self.file.take() {
            Some((file, ino)) if ino == meta.ino() => file,
            _ => {
                self.offset = 0;
                File::open(&path)?
            }
        };
        let file = &self.file.insert((file, meta.ino())).0;
        if meta.len() < self.offset {
            // Trimmed: start over from its new beginning.
            self.offset = 0;
        }
        let want = meta.len().saturating_sub(self.offset).min(CHUNK_BYTES);
        let mut buf = vec![0; usize::try_from(want).unwrap_or(0)];
        let n = file.read_at(&mut buf, self.offset)?;
        buf.truncate(n);
        self.offset += n as u64;
        Ok(buf)
    }

    /// Whether the container still runs (more output may come).
    fn running(&mut self) -> bool {
        if let Some((pid, ticks)) = self.launch
            && state::read_exit_code(&self.dir, pid).is_none()
            && procfs::is_alive(pid, ticks)
        {
            return true;
        }
        // Not the launch known (or none known yet): the record names the current one.
        let Some(record) = state::load(&self.dir) else {
            self.launch = None;
            return false;
        };
        self.launch = Some((record.pid, record.start_ticks));
        state::state_of(&self.dir, &record) == ContainerState::Running
    }

    fn poll(&mut self) -> Poll {
        match self.read_more() {
            Ok(bytes) if !bytes.is_empty() => return Poll::Bytes(bytes),
            Ok(_) if self.follow && self.running() => return Poll::Idle,
            Ok(_) if self.follow => {}
            _ => return Poll::End,
        }
        // Exited: drain what was written between the last read and the exit.
        match self.read_more() {
            Ok(bytes) if !bytes.is_empty() => Poll::Bytes(bytes),
            _ => Poll::End,
        }
    }

    async fn next_chunk(mut self) -> Option<(OutputChunk, Self)> {
        loop {
            let (tail, poll) = tokio::task::spawn_blocking(move || {
                let poll = self.poll();
                (self, poll)
            })
            .await
            .ok()?;
            self = tail;
            let got_output = matches!(poll, Poll::Bytes(_));
            self.wait = next_wait(self.wait, got_output);
            match poll {
                Poll::Bytes(bytes) => return Some((OutputChunk { bytes }, self)),
                Poll::End => return None,
                Poll::Idle => tokio::time::sleep(self.wait).await,
            }
        }
    }
}

/// Output of the container in `dir` from the start; with `follow`, until it has exited.
pub(super) fn tail(dir: PathBuf, follow: bool) -> BoxStream<'static, OutputChunk> {
    let start = Tail { dir, follow, file: None, offset: 0, launch: None, wait: FIRST_POLL };
    futures::stream::unfold(start, Tail::next_chunk).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_polls_back_off_and_output_resets_the_wait() {
        let ms = Duration::from_millis;
        let table = [
            (FIRST_POLL, false, ms(200)),
            (ms(200), false, ms(400)),
            (ms(800), false, IDLE_POLL_MAX),
            (IDLE_POLL_MAX, false, IDLE_POLL_MAX),
            (IDLE_POLL_MAX, true, FIRST_POLL),
            (FIRST_POLL, true, FIRST_POLL),
            (Duration::ZERO, false, FIRST_POLL),
        ];
        for (current, got_output, expected) in table {
            assert_eq!(next_wait(current, got_output), expected, "after {current:?}, output {got_output}");
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("corral-tail-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn reads_appends_trims_and_replacements_of_the_output_file() {
        let dir = scratch("file");
        let path = dir.join(OUTPUT_FILE);
        let first = vec![b'x'; 200];
        std::fs::write(&path, &first).expect("write");
        let mut t = Tail { dir: dir.clone(), follow: false, file: None, offset: 0, launch: None, wait: FIRST_POLL };
        assert_eq!(t.poll(), Poll::Bytes(first));
        assert_eq!(t.poll(), Poll::End, "not following: the end of the file ends the stream");

        let mut append = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut append, b"two\n").expect("append");
        assert_eq!(t.read_more().expect("read"), b"two\n", "the kept file shows what was appended");

        state::trim_output(&path, 100).expect("trim");
        let trimmed = std::fs::read(&path).expect("read");
        assert_eq!(t.read_more().expect("read"), trimmed, "a trimmed file is read from its start");

        std::fs::remove_file(&path).expect("remove");
        std::fs::write(&path, b"new file\n").expect("write");
        assert_eq!(t.read_more().expect("read"), b"new file\n", "a replaced file is opened again");

        std::fs::remove_file(&path).expect("remove");
        assert!(t.read_more().is_err(), "a removed file ends the tail");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_follower_stays_through_idle_polls_while_its_launch_runs() {
        let dir = scratch("idle");
        let path = dir.join(OUTPUT_FILE);
        std::fs::write(&path, b"hello\n").expect("write");
        // This test's own process stands for the running launch.
        let me = std::process::id();
        let ticks = procfs::stat(me).expect("own stat").start_ticks;
        let mut t =
            Tail { dir: dir.clone(), follow: true, file: None, offset: 0, launch: Some((me, ticks)), wait: FIRST_POLL };
        assert_eq!(t.poll(), Poll::Bytes(b"hello\n".to_vec()));
        assert_eq!(t.poll(), Poll::Idle);
        assert_eq!(t.poll(), Poll::Idle);
        let mut append = std::fs::OpenOptions::new().append(true).open(&path).expect("open");
        std::io::Write::write_all(&mut append, b"later\n").expect("append");
        assert_eq!(t.poll(), Poll::Bytes(b"later\n".to_vec()));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_follower_ends_once_no_launch_runs_and_the_file_is_drained() {
        let dir = scratch("follow");
        std::fs::write(dir.join(OUTPUT_FILE), b"last words\n").expect("write");
        // No record: nothing runs in this directory.
        let mut t = Tail { dir: dir.clone(), follow: true, file: None, offset: 0, launch: None, wait: FIRST_POLL };
        assert_eq!(t.poll(), Poll::Bytes(b"last words\n".to_vec()));
        assert_eq!(t.poll(), Poll::End);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
