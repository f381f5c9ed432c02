//! The MediaProvider-like test filesystem itself (`tests/common/mediafs/`): each trait it
//! claims, checked through the mount with plain system calls. The core's behaviour on it is
//! `tests/phone_storage.rs`.

mod common;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use mediafs::{MediaFs, Op};

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL")
}

fn errno_of(rc: i64) -> Option<i32> {
    (rc != 0).then(|| std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

#[test]
fn refuses_rename_flags_links_and_symlinks_like_fusedaemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = MediaFs::mount_or_skip(dir.path(), "the filesystem's traits") else { return };
    let a = fs.mountpoint.join("a.jpg");
    let b = fs.mountpoint.join("b.jpg");
    std::fs::write(&a, b"photo").expect("write through the mount");
    // SAFETY: valid NUL-terminated paths for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            c(&a).as_ptr(),
            libc::AT_FDCWD,
            c(&b).as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    assert_eq!(errno_of(rc), Some(libc::EINVAL), "renameat2(RENAME_NOREPLACE) must be refused with EINVAL");
    // The daemon answers ENOSYS; Linux 6.6+ hands EPERM to the caller ("fuse: Return EPERM
    // rather than ENOSYS from link()"), as a phone on a recent kernel does.
    let e = std::fs::hard_link(&a, &b).expect_err("link must be refused");
    assert!(matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)), "{e}");
    let e = std::os::unix::fs::symlink(&a, &b).expect_err("symlink must be refused");
    assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}");
    // A plain rename works and replaces the destination, as Os.rename does.
    std::fs::write(&b, b"other").expect("write b");
    std::fs::rename(&a, &b).expect("plain rename");
    assert_eq!(std::fs::read(&b).expect("read b"), b"photo");
    // O_CREAT|O_EXCL is honoured: the way to write without ever replacing.
    let e = std::fs::OpenOptions::new().write(true).create_new(true).open(&b).expect_err("exists");
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    // Its own device: a rename to another filesystem is EXDEV.
    let outside = dir.path().join("outside.jpg");
    let e = std::fs::rename(&b, &outside).expect_err("cross-device rename");
    assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{e}");
    // What was written is in the backing directory.
    assert_eq!(std::fs::read(fs.backing.join("b.jpg")).expect("backing"), b"photo");
}

#[test]
fn unlink_and_rename_fail_per_path_with_the_injected_errno() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = MediaFs::mount_or_skip(dir.path(), "per-path faults") else { return };
    let keep = fs.mountpoint.join("keep.jpg");
    let free = fs.mountpoint.join("free.jpg");
    std::fs::write(&keep, b"1").expect("write");
    std::fs::write(&free, b"2").expect("write");
    fs.fail(Op::Unlink, Some(Path::new("keep.jpg")), libc::EACCES);
    fs.fail(Op::Rename, Some(Path::new("keep.jpg")), libc::EROFS);
    let e = std::fs::remove_file(&keep).expect_err("unlink refused");
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    let e = std::fs::rename(&keep, fs.mountpoint.join("moved.jpg")).expect_err("rename refused");
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    std::fs::remove_file(&free).expect("other paths are not affected");
    assert_eq!(fs.refused(), 2);
    fs.clear_faults();
    std::fs::remove_file(&keep).expect("unlink allowed again");
}

#[test]
fn redaction_mode_serves_gps_as_zeros_to_readers_and_not_to_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = MediaFs::mount_or_skip(dir.path(), "GPS redaction") else { return };
    let photo = fotovakt::sample::SamplePhoto { gps: Some((69.6617, 30.1271)), seed: 3, ..Default::default() }.jpeg();
    let p = fotovakt::sample::write_like_android(&fs.mountpoint, "IMG_gps.jpg", &photo).expect("write");
    let ranges = mediafs::redact::gps_ranges(&photo);
    assert!(!ranges.is_empty(), "the sample has a GPS IFD");
    assert!(fotovakt::media::ExifFacts::parse(&std::fs::read(&p).expect("read")).gps.is_some());
    fs.set_redaction(true);
    let redacted = std::fs::read(&p).expect("read redacted");
    assert_eq!(redacted.len(), photo.len(), "same size");
    assert_ne!(redacted, photo, "GPS bytes must differ");
    let differing: usize = redacted.iter().zip(&photo).filter(|(a, b)| a != b).count();
    let in_ranges: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    assert!(differing as u64 <= in_ranges, "only GPS value bytes change: {differing} > {in_ranges}");
    assert!(fotovakt::media::ExifFacts::parse(&redacted).gps.is_none(), "no position is readable any more");
    assert_ne!(
        common::sha256(&p),
        common::sha256(&fs.backing.join("IMG_gps.jpg")),
        "the hash of what a reader sees differs"
    );
    // An open for writing is not redacted (pf_open).
    let rw = std::fs::OpenOptions::new().read(true).write(true).open(&p).expect("open rw");
    let mut buf = vec![0u8; photo.len()];
    std::os::unix::fs::FileExt::read_exact_at(&rw, &mut buf, 0).expect("read rw");
    assert_eq!(buf, photo);
    fs.set_redaction(false);
    assert_eq!(std::fs::read(&p).expect("read"), photo);
}

#[test]
fn writes_through_the_mount_raise_inotify_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = MediaFs::mount_or_skip(dir.path(), "inotify") else { return };
    // SAFETY: plain inotify calls on descriptors we own.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(fd >= 0);
    let wd =
        unsafe { libc::inotify_add_watch(fd, c(&fs.mountpoint).as_ptr(), libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO) };
    assert!(wd >= 0, "inotify_add_watch on the mount: {}", std::io::Error::last_os_error());
    fotovakt::sample::write_like_android(&fs.mountpoint, "IMG_1.jpg", b"bytes").expect("write");
    let mut seen = Vec::new();
    common::wait_until(std::time::Duration::from_secs(5), || {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let mut off = 0;
        while n > 0 && off < n as usize {
            // SAFETY: the kernel wrote whole inotify_event records.
            let ev = unsafe { &*(buf.as_ptr().add(off) as *const libc::inotify_event) };
            seen.push(ev.mask);
            off += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
        }
        seen.iter().any(|m| m & libc::IN_MOVED_TO != 0) && seen.iter().any(|m| m & libc::IN_CLOSE_WRITE != 0)
    });
    // SAFETY: closing our descriptor.
    unsafe { libc::close(fd) };
    assert!(seen.iter().any(|m| m & libc::IN_CLOSE_WRITE != 0), "close-after-write seen: {seen:x?}");
    assert!(seen.iter().any(|m| m & libc::IN_MOVED_TO != 0), "rename-into seen: {seen:x?}");
}
