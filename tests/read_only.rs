//! Read-only commands are read-only (issue 23, items 3 and 4): `list`, `show`, `stats`,
//! `report`, `verify`, `serve-metrics` and `pending` open the ledger read-only, run no recovery
//! and take no lock, so they answer while the watcher copies a large video; they read stores
//! that no writer has open, stores of another user, and stores on a read-only mount; and
//! `verify` beside a running watcher, photos arriving and officers releasing, reports only
//! what is really wrong.

mod common;

// Only `run_beside` of the storm is used here.
#[allow(dead_code)]
#[path = "common/storm.rs"]
mod storm;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

use std::io::BufRead as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{assert_invariant, sha256, stderr, stdout, wait_until, Phone};

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status.code(), stdout(&o), stderr(&o));
    o
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", stdout(o), stderr(o)))
}

/// Removes a store made outside the phone's temporary tree (on /dev/shm), also on a panic.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Write `size` bytes of an MP4 (an `ftyp` box, then a pattern) the way a camera app does:
/// under a `.pending-` name, then renamed.
fn write_video(dir: &Path, name: &str, size: usize) -> PathBuf {
    use std::io::Write as _;
    let pending = dir.join(format!(".pending-{name}"));
    let mut f = std::io::BufWriter::new(std::fs::File::create(&pending).expect("video"));
    f.write_all(b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2").expect("header");
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut left = size - 24;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).expect("write");
        left -= n;
    }
    f.into_inner().expect("flush").sync_all().expect("fsync");
    let dst = dir.join(name);
    std::fs::rename(&pending, &dst).expect("rename");
    dst
}

/// Run `args` and say how long it took.
fn timed(phone: &Phone, args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let o = phone.run(args);
    (o, t.elapsed())
}

/// The case: `list` waited 4.7 s while the watcher moved a 1.5 GB video from a tmpfs
/// camera folder to the store. Here the camera folder is on disk and the store on tmpfs, so
/// the move is the verified copy across filesystems, and the watcher is held in that copy
/// (`FOTOVAKT_PAUSE=mid_copy`: the first MiB of 500 copied, the move lock and its ledger
/// mutex held) while the read-only commands run. Each answers within a second and shows the
/// store as it is: two photos quarantined, the video `moving`. `export` reads as well, and
/// its one write waits for the move to end; then the video is quarantined, and all verifies.
#[test]
fn list_answers_within_a_second_while_the_watcher_copies_a_500_mb_video() {
    let Some(shm) = Some(Path::new("/dev/shm")).filter(|p| p.is_dir()) else {
        common::skip("no /dev/shm (tmpfs) for a store on another filesystem than the camera folder");
        return;
    };
    let phone = Phone::with_store_under(Some(shm));
    let _cleanup = RemoveDir(phone.store.clone());
    ok(phone.run(&["session", "start", "--case", "BIG-1"]));
    let photos: Vec<(String, String)> = (0..2)
        .map(|i| {
            let name = format!("IMG_{i}.jpg");
            let sha = sha256(&phone.shoot(&name, 40 + i));
            (name, sha)
        })
        .collect();
    assert!(stdout(&ok(phone.run(&["scan"]))).contains("quarantined 2"));
    let video = write_video(&phone.camera, "VID_20261207_big.mp4", 500 << 20);
    let video_sha = sha256(&video);

    let mut watch = phone
        .command(&["watch"], &[("FOTOVAKT_PAUSE", "mid_copy:12000")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = watch.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("pausing") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = watch.kill();
        panic!("the watcher never reached the copy: {}", log.join().unwrap_or_default());
    }

    // Mid-copy.
    let (o, took) = timed(&phone, &["list"]);
    let text = stdout(&ok(o));
    assert!(took < Duration::from_secs(1), "`list` took {took:?} while a move was under way");
    assert_eq!(text.lines().count(), 3, "a header and the two photos in the store: {text}");
    eprintln!("list mid-copy: {took:?}");
    let mut timings = vec![("list", took)];
    let (o, took) = timed(&phone, &["list", "--all", "--json"]);
    timings.push(("list --all", took));
    let items = json(&ok(o));
    let items = items.as_array().expect("array");
    let states: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["original_path"].as_str().unwrap_or_default(), i["state"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert!(states.iter().any(|(p, s)| p.ends_with("VID_20261207_big.mp4") && *s == "moving"), "{states:?}");
    assert_eq!(states.iter().filter(|(_, s)| *s == "quarantined").count(), 2, "{states:?}");
    let id = items.iter().find(|i| i["state"] == "moving").map(|i| i["id"].to_string()).expect("moving item");
    let (o, took) = timed(&phone, &["show", &id, "--json"]);
    timings.push(("show", took));
    let shown = json(&ok(o));
    assert_eq!(shown["item"]["state"], "moving", "{shown}");
    let kinds: Vec<&str> =
        shown["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["intake", "stashed", "decided"], "the custody log so far");
    let (o, took) = timed(&phone, &["stats", "--format", "json"]);
    timings.push(("stats", took));
    let stats = json(&ok(o));
    assert_eq!((stats["items"]["pending"].as_u64(), stats["items"]["quarantined"].as_u64()), (Some(1), Some(2)));
    let (o, took) = timed(&phone, &["verify", "--json"]);
    timings.push(("verify", took));
    let v = json(&o);
    assert!(o.status.success() && v["problems"].as_array().is_some_and(Vec::is_empty), "{v}");
    assert_eq!(v["files"], 2, "the two photos verified; the video is not in place yet: {v}");
    let report = phone.dir.path().join("report.html");
    let (o, took) = timed(&phone, &["report", "--out", report.to_str().expect("utf-8")]);
    timings.push(("report", took));
    ok(o);
    eprintln!("mid-copy: {timings:?}");
    for (what, took) in &timings {
        // Generous: the watcher holds the copy for 12 s; waiting behind it would show as that.
        assert!(*took < Duration::from_secs(3), "`{what}` took {took:?} while a move was under way");
    }
    // `export` reads now and writes its events once the move lock is free.
    let package = phone.dir.path().join("BIG-1.zip");
    let export = phone.command(&["export", "--case", "BIG-1", "--out", package.to_str().expect("utf-8")], &[]).output();
    let export = ok(export.expect("export"));
    assert!(stdout(&export).contains("2 files"), "the video was moving when the case was read: {}", stdout(&export));
    ok(Command::new(env!("CARGO_BIN_EXE_fotovakt")).arg("verify-package").arg(&package).output().expect("check"));

    // The move ends: the video is quarantined.
    let done = wait_until(Duration::from_secs(120), || {
        let items = json(&phone.run(&["list", "--json"]));
        items.as_array().is_some_and(|a| a.len() == 3)
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    let status = watch.wait().expect("watch");
    let log = log.join().unwrap_or_default();
    assert!(done, "the video never arrived in the store: {log}");
    assert!(status.success(), "{log}");
    let mut all = photos;
    all.push(("VID_20261207_big.mp4".into(), video_sha));
    assert_invariant(&phone, &all);
    let v = json(&phone.run(&["verify", "--json"]));
    assert!(v["problems"].as_array().is_some_and(Vec::is_empty) && v["files"] == 3, "{v}");
}

/// Issue 23, item 4: 5 false alarms in 15 runs while 200 photos arrived. Here `verify` runs
/// 50 times while 300 photos arrive in a storm (half of them quarantined by their work-site
/// GPS) and an officer releases quarantined ones meanwhile: every run reports nothing.
/// The photos are paced by the runs (photo `i` is written once `i / 6` runs have finished),
/// so every run has photos arriving during it, however fast the machine; the releases run on
/// their own thread, during the runs too (the runs wait for one every ten runs).
#[test]
fn verify_beside_a_storm_and_releases_never_cries_wolf() {
    const RUNS: usize = 50;
    const PHOTOS: usize = 300;
    let runs = AtomicUsize::new(0);
    // Releases so far: the runs wait for one release every ten runs, so releases happen during
    // the runs however fast `verify` is (on a fast machine 50 runs took less than three of the
    // releaser's 150 ms turns).
    let releases = AtomicUsize::new(0);
    let pace = |i: usize| {
        let end = Instant::now() + Duration::from_secs(300);
        while runs.load(Ordering::SeqCst) * PHOTOS < i * RUNS && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let s = storm::Storm { photos: PHOTOS, writers: 2, overflow: false, hold: 0, queue_limit: 64, mediafs: false };
    let beside = |_: &Phone, cfg: &Path| {
        let fotovakt = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_fotovakt"))
                .arg("--config")
                .arg(cfg)
                .args(args)
                .env_remove("FOTOVAKT_CONFIG")
                .output()
                .expect("run fotovakt")
        };
        std::thread::scope(|scope| {
            let releaser = scope.spawn(|| {
                let mut released = Vec::new();
                while runs.load(Ordering::SeqCst) < RUNS {
                    let items = json(&fotovakt(&["list", "--json"]));
                    let pick = items.as_array().into_iter().flatten().find_map(|i| i["id"].as_i64());
                    if let Some(id) = pick {
                        let o = fotovakt(&["release", &id.to_string(), "--reason", "storm test: not case material"]);
                        assert!(o.status.success(), "release {id}: {}", stderr(&o));
                        released.push(id);
                        releases.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(150));
                }
                released
            });
            let mut problems = Vec::new();
            for run in 0..RUNS {
                let end = Instant::now() + Duration::from_secs(60);
                while releases.load(Ordering::SeqCst) * 10 < run && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let o = fotovakt(&["verify", "--json"]);
                match serde_json::from_slice::<serde_json::Value>(&o.stdout) {
                    Ok(v) => {
                        for p in v["problems"].as_array().into_iter().flatten() {
                            problems.push(format!("run {run}: {p}"));
                        }
                        if !o.status.success() && v["problems"].as_array().is_some_and(Vec::is_empty) {
                            problems.push(format!("run {run}: exit {:?}: {}", o.status.code(), stderr(&o)));
                        }
                    }
                    Err(e) => problems.push(format!("run {run}: no report ({e}): {}", stderr(&o))),
                }
                runs.fetch_add(1, Ordering::SeqCst);
            }
            (problems, releaser.join().expect("releaser"))
        })
    };
    let (r, (problems, released)) = storm::run_beside(&s, &pace, beside).expect("storm runs");
    println!(
        "{} verify_runs={RUNS} verify_problems={} released_during={}",
        r.summary(&s),
        problems.len(),
        released.len()
    );
    assert!(problems.is_empty(), "{} false alarm(s): {problems:#?}", problems.len());
    assert_eq!(r.missed, 0, "photos never decided");
    assert!(r.wrong.is_empty(), "{:?}", r.wrong);
    assert!(released.len() >= 5, "releases happened during the runs: {released:?}");
    assert_eq!(r.released, released.len());
    assert_eq!(r.quarantined + r.kept + r.released, PHOTOS);
    assert!(r.verify_problems.is_empty(), "{:?}", r.verify_problems);
}

/// Running a command as another user (the store's owner, an unprivileged service account).
fn as_user(mut cmd: Command, uid: u32, home: &Path) -> Output {
    cmd.uid(uid).gid(uid).env("HOME", home).output().expect("run fotovakt as the store's owner")
}

fn chown_tree(root: &Path, uid: u32) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).expect("chown");
        if p.is_dir() && !p.is_symlink() {
            stack.extend(std::fs::read_dir(&p).expect("dir").flatten().map(|e| e.path()));
        }
    }
}

fn owners(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut v: Vec<(String, u32)> = std::fs::read_dir(dir)
        .expect("store")
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map(|m| m.uid()).unwrap_or(0)))
        .collect();
    v.sort();
    v
}

/// A store owned by an unprivileged user (files 0600, folders 0700), last written by a `scan`
/// that has exited, so no connection is open and SQLite has checkpointed and removed the
/// write-ahead log and its index. The owner's read-only commands read it and leave the
/// database file and the head byte for byte as they were. Then root reads it: what SQLite
/// makes for a reader (the empty log and its index) belongs to the store's owner, so the
/// owner's watcher and commands still open it afterwards.
#[test]
fn read_only_commands_leave_a_checkpointed_store_as_it_was_for_its_owner_and_for_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("not root, so the store cannot be given to another user");
        return;
    }
    const OWNER: u32 = 65534;
    let phone = Phone::new();
    let home = phone.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    drop(phone.command(&[], &[])); // writes the test config
    chown_tree(phone.dir.path(), OWNER);
    ok(as_user(phone.command(&["session", "start", "--case", "OWN-1"], &[]), OWNER, &home));
    phone.shoot("IMG_1.jpg", 61);
    phone.shoot("IMG_2.jpg", 62);
    chown_tree(&phone.camera, OWNER);
    assert!(stdout(&ok(as_user(phone.command(&["scan"], &[]), OWNER, &home))).contains("quarantined 2"));
    let (db, head) = (phone.store.join("ledger.sqlite"), phone.store.join("ledger.head"));
    let wal = phone.store.join("ledger.sqlite-wal");
    let shm = phone.store.join("ledger.sqlite-shm");
    assert!(!wal.exists() && !shm.exists(), "checkpointed and closed: {:?}", owners(&phone.store));
    let before = (std::fs::read(&db).expect("db"), std::fs::read(&head).expect("head"));
    let report = home.join("report.html");
    let camera = phone.camera.to_str().expect("utf-8");
    for args in [
        vec!["pending", "--camera", camera, "--json"],
        vec!["list", "--all", "--json"],
        vec!["show", "1", "--json"],
        vec!["stats", "--format", "json"],
        vec!["verify", "--json"],
        vec!["report", "--out", report.to_str().expect("utf-8")],
    ] {
        let o = ok(as_user(phone.command(&args, &[]), OWNER, &home));
        if args[0] == "verify" {
            let v = json(&o);
            assert!(v["problems"].as_array().is_some_and(Vec::is_empty) && v["files"] == 2, "{v}");
        }
        if args[0] == "pending" {
            assert_eq!(json(&o), serde_json::json!([]), "both photos decided");
        }
    }
    assert_eq!((std::fs::read(&db).expect("db"), std::fs::read(&head).expect("head")), before, "ledger unchanged");
    assert!(owners(&phone.store).iter().all(|(_, uid)| *uid == OWNER), "{:?}", owners(&phone.store));

    // A writer run closes the store again (and removes the log and index); then root reads.
    ok(as_user(phone.command(&["scan"], &[]), OWNER, &home));
    assert!(!wal.exists() && !shm.exists(), "{:?}", owners(&phone.store));
    let items = json(&ok(phone.run(&["list", "--json"])));
    assert_eq!(items.as_array().map(Vec::len), Some(2));
    assert!(wal.exists() && shm.exists(), "SQLite makes them for a reader: {:?}", owners(&phone.store));
    assert!(owners(&phone.store).iter().all(|(_, uid)| *uid == OWNER), "root's read left: {:?}", owners(&phone.store));
    assert_eq!((std::fs::read(&db).expect("db"), std::fs::read(&head).expect("head")), before, "ledger unchanged");
    phone.shoot("IMG_3.jpg", 63);
    chown_tree(&phone.camera, OWNER);
    let o = ok(as_user(phone.command(&["scan"], &[]), OWNER, &home));
    assert!(stdout(&o).contains("quarantined 1"), "the owner still writes after root read: {}", stdout(&o));
    let v = json(&ok(as_user(phone.command(&["verify", "--json"], &[]), OWNER, &home)));
    assert!(v["problems"].as_array().is_some_and(Vec::is_empty) && v["files"] == 3, "{v}");
}

/// Unmounts when dropped, also on a panic.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A store on a read-only mount (a backup, a seized phone's image): there SQLite cannot make
/// the write-ahead log or its index for a reader, and none exists, so the ledger is read as an
/// immutable file. Every read-only command works on it.
#[test]
fn read_only_commands_read_a_store_on_a_read_only_mount() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("not root, so no tmpfs can be mounted and made read-only");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).expect("mnt");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    assert!(mounted, "mount a tmpfs as root");
    let _mount = Mount(mnt.clone());
    let phone = Phone::with_store_under(Some(&mnt));
    ok(phone.run(&["session", "start", "--case", "RO-1"]));
    phone.shoot("IMG_1.jpg", 71);
    phone.shoot("IMG_2.jpg", 72);
    ok(phone.run(&["scan"]));
    // One the officer's own: a keyed record only, which `pending` matches with the device
    // secret it reads from the read-only store.
    ok(phone.run(&["session", "stop"]));
    phone.shoot("IMG_own.jpg", 73);
    assert!(stdout(&ok(phone.run(&["scan"]))).contains("kept 1"));
    let remount = Command::new("mount").args(["-o", "remount,ro"]).arg(&mnt).status();
    assert!(remount.is_ok_and(|s| s.success()), "remount read-only");
    assert!(std::fs::write(phone.store.join("x"), b"x").is_err(), "the mount is read-only");
    let items = json(&ok(phone.run(&["list", "--all", "--json"])));
    assert_eq!(items.as_array().map(Vec::len), Some(2), "{items}");
    ok(phone.run(&["show", "1"]));
    let stats = json(&ok(phone.run(&["stats", "--format", "json"])));
    assert_eq!(stats["items"]["quarantined"], 2, "{stats}");
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert!(v["problems"].as_array().is_some_and(Vec::is_empty) && v["files"] == 2, "{v}");
    let new = phone.shoot("IMG_new.jpg", 74);
    let camera = phone.camera.to_str().expect("utf-8");
    let pending = json(&ok(phone.run(&["pending", "--camera", camera, "--json"])));
    assert_eq!(pending, serde_json::json!([new.to_str().expect("utf-8")]), "only the photo not decided yet");
    // A writer is refused there, with the store's own error.
    let o = phone.run(&["scan"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}
