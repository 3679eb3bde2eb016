//! Host directory trees placed into a created container: one tar archive (ustar, with pax
//! records for long names) streamed to Docker's put-archive endpoint at `/`.
//!
//! Ownership: the archive says root, and the upload asks the engine to give every extracted
//! entry to the container's configured user (`copyUIDGID`), which the engine resolves with the
//! image's own `/etc/passwd`, so the files are the container user's whatever its uid.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::convert;
use crate::{FileTree, RuntimeError};

const BLOCK: usize = 512;
/// Bytes per chunk sent to the engine.
const CHUNK: usize = 64 * 1024;
/// Chunks buffered between the archiver and the upload.
const CHANNEL_DEPTH: usize = 4;
/// ustar's size field holds 11 octal digits.
const MAX_FILE_SIZE: u64 = 0o77_777_777_777;

/// Uploads `files` into the (created, not yet started) container `id`.
pub(super) async fn upload(docker: &Docker, id: &str, files: &[FileTree]) -> Result<(), RuntimeError> {
    let mut plan = Vec::with_capacity(files.len());
    for f in files {
        let dest = f.destination_segments()?.join("/");
        plan.push((f.source.clone(), dest));
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(CHANNEL_DEPTH);
    let span = tracing::debug_span!("archive_files", container = id, trees = plan.len());
    let producer = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut out = ChunkWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        let written = plan.iter().try_for_each(|(src, dest)| write_tree(&mut out, src, dest)).and_then(|()| {
            out.write_all(&[0u8; 2 * BLOCK])?;
            out.flush()
        });
        if let Err(e) = &written {
            // Makes the upload fail instead of extracting a truncated archive.
            let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
        }
        written
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let options = UploadToContainerOptionsBuilder::new().path("/").copy_uidgid("true").build();
    let uploaded = docker
        .upload_to_container(id, Some(options), bollard::body_try_stream(stream))
        .instrument(tracing::debug_span!("upload_files", container = id))
        .await;
    let produced = producer.await.map_err(|e| RuntimeError::Other(format!("archiving files failed: {e}")))?;
    if let Err(e) = produced {
        return Err(RuntimeError::Other(format!("archiving files for the container: {e}")));
    }
    uploaded.map_err(|e| convert::map_err("placing files into the container", e))
}

/// An `io::Write` sending fixed-size chunks to the upload; fails once the upload is gone.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload ended"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The kinds of entry the archive holds; other file types (sockets, devices) are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Self::File => b'0',
            Self::Symlink => b'2',
            Self::Dir => b'5',
        }
    }
}

/// One archive entry's header fields.
struct Entry<'a> {
    path: &'a [u8],
    kind: Kind,
    mode: u32,
    size: u64,
    mtime: u64,
    link: &'a [u8],
}

/// Writes `source` (a directory) as `dest` (relative to the container's root) and everything
/// below it, in name order, without following symbolic links.
pub(super) fn write_tree(out: &mut impl Write, source: &Path, dest: &str) -> io::Result<()> {
    let meta = fs::metadata(source)?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", source.display())));
    }
    write_header(out, &dir_entry(format!("{dest}/").as_bytes(), &meta))?;
    write_dir(out, source, dest.as_bytes())
}

fn dir_entry<'a>(path: &'a [u8], meta: &fs::Metadata) -> Entry<'a> {
    Entry { path, kind: Kind::Dir, mode: 0o755, size: 0, mtime: mtime(meta), link: b"" }
}

fn mtime(meta: &fs::Metadata) -> u64 {
    u64::try_from(meta.mtime()).unwrap_or(0)
}

fn write_dir(out: &mut impl Write, dir: &Path, prefix: &[u8]) -> io::Result<()> {
    let mut entries = fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for e in entries {
        let mut path = prefix.to_vec();
        path.push(b'/');
        path.extend_from_slice(e.file_name().as_bytes());
        let meta = fs::symlink_metadata(e.path())?;
        let ft = meta.file_type();
        if ft.is_dir() {
            path.push(b'/');
            write_header(out, &dir_entry(&path, &meta))?;
            path.pop();
            write_dir(out, &e.path(), &path)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(e.path())?;
            let link = target.as_os_str().as_bytes();
            let entry = Entry { path: &path, kind: Kind::Symlink, mode: 0o777, size: 0, mtime: mtime(&meta), link };
            write_header(out, &entry)?;
        } else if ft.is_file() {
            write_file(out, &e.path(), &path, &meta)?;
        }
    }
    Ok(())
}

fn write_file(out: &mut impl Write, source: &Path, path: &[u8], meta: &fs::Metadata) -> io::Result<()> {
    let size = meta.len();
    if size > MAX_FILE_SIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is too large", source.display())));
    }
    // Executable for everyone when executable for anyone; otherwise plain readable files.
    let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
    write_header(out, &Entry { path, kind: Kind::File, mode, size, mtime: mtime(meta), link: b"" })?;
    let copied = io::copy(&mut fs::File::open(source)?.take(size), out)?;
    if copied != size {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} shrank while read", source.display())));
    }
    pad(out, size)
}

/// Zeroes up to the next block boundary after `size` bytes of content.
fn pad(out: &mut impl Write, size: u64) -> io::Result<()> {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { Ok(()) } else { out.write_all(&[0u8; BLOCK][..BLOCK - rest]) }
}

/// The entry's header, preceded by a pax header when its path or link target does not fit.
fn write_header(out: &mut impl Write, e: &Entry<'_>) -> io::Result<()> {
    let mut records = Vec::new();
    if e.path.len() > 100 {
        records.extend(pax_record("path", e.path));
    }
    if e.link.len() > 100 {
        records.extend(pax_record("linkpath", e.link));
    }
    if !records.is_empty() {
        let size = records.len() as u64;
        let pax = Entry { path: b"././@PaxHeader", kind: Kind::File, mode: 0o644, size, mtime: e.mtime, link: b"" };
        let mut block = ustar_header(&pax);
        block[156] = b'x';
        set_checksum(&mut block);
        out.write_all(&block)?;
        out.write_all(&records)?;
        pad(out, size)?;
    }
    out.write_all(&ustar_header(e))
}

/// `"<length> <key>=<value>\n"`, the length counting the whole record including itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    let mut rec = format!("{len} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// A ustar header block; names longer than their fields are cut (a pax record precedes).
fn ustar_header(e: &Entry<'_>) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = &e.path[..e.path.len().min(100)];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(e.mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], e.size);
    octal(&mut h[136..148], e.mtime.min(0o77_777_777_777));
    h[156] = e.kind.flag();
    let link = &e.link[..e.link.len().min(100)];
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    set_checksum(&mut h);
    h
}

/// Zero-padded octal digits filling all but the field's last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

fn set_checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests;
