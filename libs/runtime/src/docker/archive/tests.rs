use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::process::Command;

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("corral-archive-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pax_record_lengths_count_themselves() {
    for value_len in [0, 1, 5, 90, 91, 92, 93, 94, 95, 96, 200, 990, 995, 996, 10_000] {
        let rec = pax_record("path", &vec![b'a'; value_len]);
        let text = String::from_utf8(rec.clone()).expect("ascii");
        let (len, _) = text.split_once(' ').expect("length prefix");
        assert_eq!(len.parse::<usize>().expect("number"), rec.len(), "value of {value_len} bytes");
        assert!(text.ends_with('\n'));
    }
}

#[test]
fn octal_fields_are_padded_and_terminated() {
    let mut f = [0xffu8; 8];
    octal(&mut f, 0o755);
    assert_eq!(&f, b"0000755\0");
    let mut f = [0xffu8; 12];
    octal(&mut f, 5);
    assert_eq!(&f, b"00000000005\0");
}

/// The archive of a tree with a long path, an executable, a symlink and an empty
/// directory extracts with the system's tar to the same tree under the destination.
#[test]
fn system_tar_extracts_the_tree_under_the_destination() {
    let src = TempDir::new();
    let long = "d".repeat(60);
    fs::create_dir_all(src.0.join(&long).join(&long)).expect("long dirs");
    fs::write(src.0.join(&long).join(&long).join("deep.txt"), b"deep").expect("deep");
    fs::write(src.0.join("README"), b"hello\n").expect("readme");
    fs::write(src.0.join("run.sh"), b"#!/bin/sh\necho hi\n").expect("script");
    fs::set_permissions(src.0.join("run.sh"), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::write(src.0.join("big"), vec![7u8; 3 * CHUNK + 13]).expect("big");
    symlink("README", src.0.join("link")).expect("symlink");
    fs::create_dir(src.0.join("empty")).expect("empty dir");

    let mut archive = Vec::new();
    write_tree(&mut archive, &src.0, "home/work/src").expect("archive");
    archive.extend_from_slice(&[0u8; 2 * BLOCK]);
    assert_eq!(archive.len() % BLOCK, 0);

    let out = TempDir::new();
    let tar_file = out.0.join("a.tar");
    fs::write(&tar_file, &archive).expect("write tar");
    let root = out.0.join("root");
    fs::create_dir(&root).expect("root");
    let status = Command::new("tar").arg("-xf").arg(&tar_file).arg("-C").arg(&root).status().expect("tar runs");
    assert!(status.success(), "tar extracts the archive");

    let dest = root.join("home/work/src");
    assert_eq!(fs::read(dest.join("README")).expect("readme"), b"hello\n");
    assert_eq!(fs::read(dest.join(&long).join(&long).join("deep.txt")).expect("deep"), b"deep");
    assert_eq!(fs::read(dest.join("big")).expect("big").len(), 3 * CHUNK + 13);
    assert_eq!(fs::read_link(dest.join("link")).expect("link"), PathBuf::from("README"));
    assert!(dest.join("empty").is_dir());
    let mode = |p: &str| fs::metadata(dest.join(p)).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode("run.sh") & 0o111, 0o111, "executables stay executable");
    assert_eq!(mode("README") & 0o111, 0, "plain files are not executable");
}

#[test]
fn a_file_source_is_refused() {
    let src = TempDir::new();
    fs::write(src.0.join("f"), b"x").expect("file");
    let err = write_tree(&mut Vec::new(), &src.0.join("f"), "x").expect_err("not a directory");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
