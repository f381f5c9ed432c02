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

fn power_mount(dir: &Path, model: mediafs::power::Model, what: &str) -> Option<MediaFs> {
    if let Some(why) = MediaFs::unavailable() {
        common::skip(format!("{why}; {what} not exercised"));
        return None;
    }
    let (b, m) = (dir.join("backing"), dir.join("mnt"));
    std::fs::create_dir_all(&b).and_then(|_| std::fs::create_dir_all(&m)).expect("dirs");
    let opts = mediafs::Options { phone: false, power: Some(model) };
    Some(MediaFs::mount_with(&b, &m, opts).expect("mount in power-cut mode"))
}

fn write_synced(p: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(p).expect("create");
    std::io::Write::write_all(&mut f, bytes).expect("write");
    f.sync_all().expect("fsync");
}

fn fsync_dir(p: &Path) {
    std::fs::File::open(p).and_then(|d| d.sync_all()).expect("fsync dir");
}

#[test]
fn power_cut_posix_keeps_only_what_was_fsynced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut fs) = power_mount(dir.path(), mediafs::power::Model::Posix, "the POSIX power-cut model") else {
        return;
    };
    let m = fs.mountpoint.clone();
    write_synced(&m.join("a.txt"), b"A1");
    write_synced(&m.join("d.txt"), b"D1");
    write_synced(&m.join("u.txt"), b"U1");
    fsync_dir(&m);
    // Not durable: new content, a rename, an unlink, a new file fsynced but not its entry.
    std::fs::write(m.join("d.txt"), b"D2 is longer").expect("overwrite");
    std::fs::rename(m.join("a.txt"), m.join("b.txt")).expect("rename");
    std::fs::remove_file(m.join("u.txt")).expect("unlink");
    write_synced(&m.join("n.txt"), b"N");
    std::fs::create_dir(m.join("sub")).expect("mkdir");
    let rep = fs.power_cut(&mut || 0).expect("cut");
    assert!(rep.errors.is_empty(), "{rep}");
    assert_eq!(rep.pending_ops, 4, "{rep}");
    fs.remount().expect("remount");
    assert_eq!(std::fs::read(m.join("a.txt")).expect("a is back"), b"A1");
    assert!(!m.join("b.txt").exists(), "the rename was not durable");
    assert_eq!(std::fs::read(m.join("d.txt")).expect("d"), b"D1", "content reverts to the fsynced bytes");
    assert_eq!(std::fs::read(m.join("u.txt")).expect("u is back"), b"U1", "the unlink was not durable");
    assert!(!m.join("n.txt").exists(), "fsync of a file does not make its entry durable (POSIX model)");
    assert!(!m.join("sub").exists());
    // The power is back: a fresh journal, and what is there now is durable.
    std::fs::write(m.join("d.txt"), b"D3").expect("write after remount");
    fs.power_cut(&mut || 0).expect("cut again");
    fs.remount().expect("remount");
    assert_eq!(std::fs::read(m.join("d.txt")).expect("d"), b"D1");
    assert!(!m.join(".backing.powercut-attic").exists());
}

#[test]
fn power_cut_directory_fsync_commits_entries_and_writes_after_a_cut_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut fs) = power_mount(dir.path(), mediafs::power::Model::Posix, "directory fsync") else { return };
    let m = fs.mountpoint.clone();
    std::fs::create_dir(m.join("objects")).expect("mkdir");
    write_synced(&m.join("tmp-copy"), b"photo bytes");
    std::fs::rename(m.join("tmp-copy"), m.join("objects/photo")).expect("rename into place");
    fsync_dir(&m.join("objects"));
    // After the directory fsync: a rename replacing a file, not durable.
    write_synced(&m.join("head.tmp"), b"7 abc");
    std::fs::rename(m.join("head.tmp"), m.join("objects/photo")).expect("replace");
    let open = std::fs::OpenOptions::new().write(true).open(m.join("objects/photo")).expect("open");
    let rep = fs.power_cut(&mut || 0).expect("cut");
    assert!(rep.errors.is_empty(), "{rep}");
    let e = std::os::unix::fs::FileExt::write_at(&open, b"late", 0).expect_err("no writes after the cut");
    assert!(matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::ENOTCONN) | Some(libc::ENODEV)), "{e}");
    drop(open);
    fs.remount().expect("remount");
    assert_eq!(std::fs::read(m.join("objects/photo")).expect("photo"), b"photo bytes", "the replaced file is back");
    assert!(!m.join("tmp-copy").exists() && !m.join("head.tmp").exists());
}

#[test]
fn power_cut_journal_model_commits_metadata_on_any_fsync_and_tears_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(mut fs) = power_mount(dir.path(), mediafs::power::Model::Journal, "the journal model") else { return };
    let m = fs.mountpoint.clone();
    let old: Vec<u8> = (0..3 * 4096).map(|i| (i % 251) as u8).collect();
    let new = vec![0xEEu8; 3 * 4096 + 100];
    write_synced(&m.join("big.bin"), &old);
    fsync_dir(&m);
    std::fs::write(m.join("big.bin"), &new).expect("overwrite, not fsynced");
    std::fs::rename(m.join("big.bin"), m.join("moved.bin")).expect("rename");
    write_synced(&m.join("other"), b"x"); // ext4's fsync commits the journal: the rename too
                                          // rand() = 2: no extra journal prefix (none pending), content torn at page 2.
    let rep = fs.power_cut(&mut || 2).expect("cut");
    assert!(rep.errors.is_empty(), "{rep}");
    assert_eq!((rep.pending_ops, rep.torn), (0, 1), "{rep}");
    fs.remount().expect("remount");
    assert!(!m.join("big.bin").exists(), "the rename was committed by the other file's fsync");
    let got = std::fs::read(m.join("moved.bin")).expect("moved");
    let mut want = new[..2 * 4096].to_vec();
    want.extend_from_slice(&old[2 * 4096..]);
    assert_eq!(got, want, "new bytes up to the torn page, old bytes after");
    assert_eq!(std::fs::read(m.join("other")).expect("other"), b"x");
}

/// The ledger is SQLite in WAL mode: on the plain pass-through, two processes share it
/// (POSIX locks are the kernel's local ones on a FUSE mount without `FUSE_POSIX_LOCKS`;
/// `-shm` is mmapped through the page cache) while photos are quarantined into it.
#[test]
fn sqlite_ledger_in_wal_mode_works_on_the_plain_passthrough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = power_mount(dir.path(), mediafs::power::Model::Journal, "SQLite over the plain mediafs") else {
        return;
    };
    let camera = dir.path().join("phone/DCIM/Camera");
    std::fs::create_dir_all(&camera).expect("camera");
    let phone = common::Phone { dir, camera, store: fs.mountpoint.join("store") };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}\n{}", common::stdout(&o), common::stderr(&o));
        o
    };
    ok(phone.run(&["session", "start", "--case", "C-1", "--officer", "o"]));
    for i in 0..12 {
        phone.shoot(&format!("IMG_{i}.jpg"), 100 + i);
    }
    // A second process reads the ledger while the scan writes it.
    let mut reader = phone.command(&["list", "--all", "--json"], &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let r = std::thread::spawn(move || {
        let mut runs = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let o = reader.output().expect("list");
            assert!(o.status.success(), "list during a scan: {}", String::from_utf8_lossy(&o.stderr));
            runs += 1;
        }
        runs
    });
    let o = ok(phone.run(&["scan"]));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let runs = r.join().expect("reader");
    assert!(common::stdout(&o).contains("quarantined 12"), "{}", common::stdout(&o));
    assert!(runs >= 1);
    let v = ok(phone.run(&["verify", "--json"]));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).expect("json");
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
    assert!(fs.mountpoint.join("store/ledger.sqlite").exists());
    drop(phone);
}
