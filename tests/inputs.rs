//! Inputs that broke the agent (issue 23, item 6), each through the real binary: AVIF photos,
//! a far-future mtime, a tampered hash in a ledger row, a `settle` of zero, releasing an item
//! adopted after a power cut, which times put a photo in a case session, `classify` without
//! ONNX Runtime, and a writer that opens a photo while the agent holds its lease probe.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use common::{sha256, stderr, stdout, Phone};
use fotovakt::sample::SamplePhoto;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    o
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Set a file's mtime (and atime) to `secs` since the epoch, with `utimensat`.
fn set_mtime(path: &Path, secs: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path");
    let t = libc::timespec { tv_sec: secs, tv_nsec: 0 };
    // SAFETY: `c` is a valid NUL-terminated path; `times` points at two timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
    assert_eq!(rc, 0, "utimensat {}: {}", path.display(), std::io::Error::last_os_error());
}

/// A config naming the phone's camera folder (for `tag`, `release` and `watch`).
fn camera_config(phone: &Phone, extra: &str) -> PathBuf {
    let cfg = phone.dir.path().join("cameras.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n{extra}[classifier]\nenabled = false\n", phone.camera))
        .expect("config");
    cfg
}

/// AVIF photos (Android 12+ can write them) were ignored: `.avif` was not a media name,
/// although the content sniffer knew the brand. Now one shot during a session is quarantined.
#[test]
fn an_avif_photo_is_a_candidate_and_quarantined_in_a_session() {
    let phone = Phone::new();
    ok(phone.run(&["session", "start", "--case", "AV-1"]));
    // An ISO-BMFF `ftyp` box with the `avif` brand, then some payload.
    let mut avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec();
    avif.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    let p = fotovakt::sample::write_like_android(&phone.camera, "PXL_20261201_101010.avif", &avif).expect("write");
    let o = ok(phone.run(&["scan"]));
    assert!(stdout(&o).contains("quarantined 1"), "{}", stdout(&o));
    assert!(!p.exists());
    let list = json(&phone.run(&["list", "--json"]));
    assert_eq!(list[0]["kind"], "heif", "{list}");
    assert_eq!(list[0]["sha256"], sha256_bytes(&avif));
}

fn sha256_bytes(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// A file whose mtime is after 2262 (a camera with a wrong clock, or on purpose) overflowed
/// `mtime * 1e9` in nanoseconds: a panic in the debug binary, a wrapped time in release.
/// Now it is decided like any photo, and quarantined by a session, with nothing lost.
#[test]
fn a_photo_with_a_far_future_mtime_is_decided_not_a_panic() {
    let phone = Phone::new();
    let kept = phone.shoot("IMG_far1.jpg", 1);
    set_mtime(&kept, 10_413_792_000); // 2300-01-01
    let o = phone.run(&["scan"]);
    assert!(o.status.success() && stdout(&o).contains("kept 1"), "{}\n{}", stdout(&o), stderr(&o));
    ok(phone.run(&["session", "start", "--case", "FAR-1"]));
    let case = phone.shoot("IMG_far2.jpg", 2);
    let sha = sha256(&case);
    set_mtime(&case, 253_402_300_799); // 9999-12-31T23:59:59
    let o = phone.run(&["scan"]);
    assert!(o.status.success() && stdout(&o).contains("quarantined 1"), "{}\n{}", stdout(&o), stderr(&o));
    assert!(!case.exists() && phone.stored().iter().any(|p| sha256(p) == sha), "in the store, verified");
    ok(phone.run(&["verify"]));
}

/// `&sha256[..8]` and `&sha256[..2]` panicked on an edited ledger row. Now `list` shows the
/// row, `export` refuses with the item and what to run, and `verify` reports it.
#[test]
fn a_tampered_hash_in_a_ledger_row_is_reported_not_a_panic() {
    let phone = Phone::new();
    ok(phone.run(&["session", "start", "--case", "T-1"]));
    phone.shoot("IMG_t1.jpg", 1);
    ok(phone.run(&["scan"]));
    let id = json(&phone.run(&["list", "--json"]))[0]["id"].as_i64().expect("id");
    let db = rusqlite::Connection::open(phone.store.join("ledger.sqlite")).expect("ledger");
    for forged in ["åäö", "ab", ""] {
        db.execute("UPDATE items SET sha256 = ?1 WHERE id = ?2", rusqlite::params![forged, id]).expect("tamper");
        let o = phone.run(&["list"]);
        assert!(o.status.success(), "{forged:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("T-1"), "{forged:?}: {}", stdout(&o));
        let out = phone.dir.path().join(format!("pkg-{}", forged.len()));
        let o = phone.run(&["export", "--case", "T-1", "--out", out.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(1), "{forged:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{forged:?}: {err}");
        assert!(err.contains(&format!("item {id}")) && err.contains("fotovakt verify"), "{forged:?}: {err}");
        assert!(!out.exists(), "{forged:?}: no package");
        let o = phone.run(&["verify"]);
        assert_eq!(o.status.code(), Some(1), "{forged:?}: {}", stdout(&o));
        assert!(stdout(&o).contains(&format!("PROBLEM: item {id}")), "{forged:?}: {}", stdout(&o));
    }
}

/// `settle = "0s"` was accepted: a file still being written would be taken at once, and
/// re-checked in a busy loop. Now it is a config error naming the file and the key: exit 2.
#[test]
fn a_settle_of_zero_is_a_config_error() {
    let phone = Phone::new();
    for (settle, said) in [("0s", "0s"), ("0ms", "0s"), ("10ms", "10ms")] {
        let cfg = camera_config(&phone, &format!("settle = {settle:?}\n"));
        let o = phone.run(&["--config", cfg.to_str().expect("utf-8"), "watch"]);
        assert_eq!(o.status.code(), Some(2), "{settle}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&format!("config {}: settle {said} is too short", cfg.display())), "{err}");
        assert!(!phone.store.exists(), "refused before the store is opened");
    }
    let cfg = camera_config(&phone, "settle = \"100ms\"\n");
    ok(phone.run(&["--config", cfg.to_str().expect("utf-8"), "session", "status"]));
}

/// A store file whose ledger rows a power cut lost is adopted at recovery with its original
/// path unknown. `release` said "run verify", and `verify` found nothing. Now it is
/// released into the first camera folder, as `recovered-<item>.<ext>`, audited; without a
/// camera folder the refusal says what to set.
#[test]
fn an_item_adopted_after_a_power_cut_can_be_released() {
    let phone = Phone::new();
    ok(phone.run(&["session", "status"]));
    // What a power cut leaves: a verified store file, no rows.
    let bytes = SamplePhoto { seed: 77, ..SamplePhoto::default() }.jpeg();
    let sha = sha256_bytes(&bytes);
    let shard = phone.store.join("objects").join(&sha[..2]);
    std::fs::DirBuilder::new().mode(0o700).recursive(true).create(&shard).expect("shard");
    let orphan = shard.join(format!("{sha}-41.jpg"));
    std::fs::write(&orphan, &bytes).expect("orphan");
    std::fs::set_permissions(&orphan, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    ok(phone.run(&["session", "status"])); // recovery at open adopts it
    let list = json(&phone.run(&["list", "--json"]));
    assert_eq!(list[0]["source"], "recovered", "{list}");
    let id = list[0]["id"].as_i64().expect("id");
    // No camera folder configured: a clear refusal, nothing moved.
    let o = phone.run(&["release", &id.to_string(), "--reason", "personal photo"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("set `cameras` in the config") && !stderr(&o).contains("verify"), "{}", stderr(&o));
    assert!(orphan.exists());
    let cfg = camera_config(&phone, "");
    let o =
        ok(phone.run(&["--config", cfg.to_str().expect("utf-8"), "release", &id.to_string(), "--reason", "personal"]));
    let back = phone.camera.join(format!("recovered-{id}.jpg"));
    assert!(stdout(&o).contains(&back.to_string_lossy().into_owned()), "{}", stdout(&o));
    assert_eq!(sha256(&back), sha, "the same bytes, back in the camera folder");
    assert!(!orphan.exists() && phone.stored().is_empty());
    let show = json(&phone.run(&["show", &id.to_string(), "--json"]));
    assert_eq!(show["item"]["state"], "released", "{show}");
    ok(phone.run(&["verify"]));
    // The watcher's next look keeps it: an officer released these bytes.
    ok(phone.run(&["session", "start", "--case", "S-1"]));
    let o = ok(phone.run(&["--config", cfg.to_str().expect("utf-8"), "scan"]));
    assert!(stdout(&o).contains("kept 1"), "{}", stdout(&o));
    assert!(back.exists());
}

/// When a photo belongs to a case session.
#[derive(Debug, Clone, Copy)]
enum When {
    /// Inside session A (closed before the photo is written).
    InA,
    /// The photo's own time is old: 2020-06-01 (taken long before, times kept on copy).
    Old,
    /// A camera whose clock was never set: 2001-01-01.
    WrongClock,
    /// Now, when it is written.
    Now,
}

/// The session rule, as data: each row is a photo with its EXIF time, its mtime, and whether
/// it arrives while session B is open. Any of EXIF time, mtime or first sight inside a
/// session quarantines it for that session's case; a wrong camera clock can only add one.
/// (file name, EXIF time, mtime, written while session B is open, case expected).
type SessionRow = (&'static str, Option<When>, When, bool, Option<&'static str>);

const SESSION_ROWS: &[SessionRow] = &[
    // Taken during session A on another camera, copied in after it with a new mtime.
    ("IMG_exif_in_a.jpg", Some(When::InA), When::Now, false, Some("A-1")),
    // Written during session A (mtime), picked up after it, EXIF from a wrong clock.
    ("IMG_mtime_in_a.jpg", Some(When::WrongClock), When::InA, false, Some("A-1")),
    // Taken long before, copied in with its times kept while session B is open.
    ("IMG_copied_in_b.jpg", Some(When::Old), When::Old, true, Some("B-2")),
    // A camera with a wrong clock during session B: the device's clock still counts.
    ("IMG_wrong_clock_in_b.jpg", Some(When::WrongClock), When::Now, true, Some("B-2")),
    // No session at any of its times: kept.
    ("IMG_after.jpg", Some(When::Now), When::Now, false, None),
    ("IMG_old.jpg", Some(When::Old), When::Old, false, None),
    ("IMG_no_exif.jpg", None, When::Now, false, None),
];

#[test]
fn a_session_takes_a_photo_shot_written_or_first_seen_during_it() {
    use chrono::TimeZone;
    let phone = Phone::new();
    ok(phone.run(&["session", "start", "--case", "A-1"]));
    std::thread::sleep(Duration::from_millis(1100));
    let in_a = chrono::Local::now();
    std::thread::sleep(Duration::from_millis(1100));
    ok(phone.run(&["session", "stop"]));
    // EXIF times count whole seconds: a photo shot in the second the session stopped
    // reads as shot during it (and a session takes it, the safe side). Wait out that
    // second, so that `Now` is after the session.
    std::thread::sleep(Duration::from_millis(1100));
    let naive = |w: When| -> NaiveDateTime {
        match w {
            When::InA => in_a.naive_local(),
            When::Old => NaiveDate::from_ymd_opt(2020, 6, 1).and_then(|d| d.and_hms_opt(12, 0, 0)).expect("date"),
            When::WrongClock => NaiveDate::from_ymd_opt(2001, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).expect("date"),
            When::Now => chrono::Local::now().naive_local(),
        }
    };
    let write = |(name, exif, mtime, _, _): &SessionRow, seed: u64| {
        let bytes = SamplePhoto { seed, capture_time: exif.map(naive), ..SamplePhoto::default() }.jpeg();
        let p = fotovakt::sample::write_like_android(&phone.camera, name, &bytes).expect("write");
        if !matches!(mtime, When::Now) {
            let t = chrono::Local.from_local_datetime(&naive(*mtime)).earliest().expect("local time");
            set_mtime(&p, t.timestamp());
        }
    };
    // Each scan's outcomes, one JSON object a line: the decision on every file, kept ones
    // included (an officer's own photo has no item, only a keyed record: issue 29).
    let mut outcomes: Vec<serde_json::Value> = Vec::new();
    let mut scan = || {
        let o = ok(phone.run(&["scan", "--json"]));
        outcomes.extend(stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))));
    };
    for (i, row) in SESSION_ROWS.iter().enumerate().filter(|(_, r)| !r.3) {
        write(row, 100 + i as u64);
    }
    scan();
    ok(phone.run(&["session", "start", "--case", "B-2"]));
    for (i, row) in SESSION_ROWS.iter().enumerate().filter(|(_, r)| r.3) {
        write(row, 100 + i as u64);
    }
    scan();
    ok(phone.run(&["session", "stop"]));
    let items = json(&phone.run(&["list", "--all", "--json"]));
    let camera = phone.camera.to_string_lossy().into_owned();
    let pending = json(&phone.run(&["pending", "--camera", &camera, "--json"]));
    let named = |v: &serde_json::Value, key: &str, name: &str| {
        v[key].as_str().is_some_and(|p| p.ends_with(&format!("/{name}")))
    };
    let mut wrong = Vec::new();
    for (name, _, _, _, case) in SESSION_ROWS {
        let item = items.as_array().and_then(|a| a.iter().find(|i| named(i, "original_path", name)));
        let outcome = outcomes.iter().find(|o| named(o, "path", name));
        let got = match case {
            Some(_) => item.map(|i| (i["state"].as_str(), i["source"].as_str(), i["case_id"].as_str())),
            None => outcome.map(|o| (o["kind"].as_str(), o["source"].as_str(), o["case_id"].as_str())),
        };
        let want = match case {
            Some(c) => (Some("quarantined"), Some("session"), Some(*c)),
            None => (Some("kept"), Some("default"), None),
        };
        match got {
            None => wrong.push(format!("{name}: not decided")),
            Some(got) if got != want => wrong.push(format!("{name}: {got:?}, expected {want:?}")),
            Some(_) => {}
        }
        if case.is_none() {
            if item.is_some() || outcome.is_some_and(|o| !o["item"].is_null()) {
                wrong.push(format!("{name}: kept, yet it has an item (a keyed record only, issue 29)"));
            }
            let is_pending = pending
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p.as_str().is_some_and(|p| p.ends_with(&format!("/{name}"))));
            if !phone.camera.join(name).exists() || is_pending {
                wrong.push(format!("{name}: kept, yet not settled at its path"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `onnxruntime/capi` folders of the system prefixes the agent searches (`/usr/local`,
/// `/usr`), which no environment variable can take away.
fn system_runtime_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for prefix in ["/usr/local", "/usr"] {
        for lib in ["lib", "lib64"] {
            for py in std::fs::read_dir(Path::new(prefix).join(lib)).into_iter().flatten().flatten() {
                if !py.file_name().to_string_lossy().starts_with("python3") {
                    continue;
                }
                for sp in ["site-packages", "dist-packages"] {
                    let capi = py.path().join(sp).join("onnxruntime/capi");
                    if capi.is_dir() {
                        out.push(capi);
                    }
                }
            }
        }
    }
    out
}

/// `classify` where no ONNX Runtime can be found: no `ORT_DYLIB_PATH`, no virtualenv, no
/// pyenv, an empty HOME, a `PATH` of the system's own folders, and (as root) any system
/// Python's `onnxruntime` hidden in a mount namespace. `None` where it cannot be arranged.
fn classify_without_runtime(dir: &Path, args: &[&Path]) -> Option<Output> {
    let home = dir.join("empty-home");
    std::fs::create_dir_all(&home).expect("home");
    let hidden = system_runtime_dirs();
    let mut cmd = if hidden.is_empty() {
        Command::new(env!("CARGO_BIN_EXE_fotovakt"))
    } else {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let mut script = String::from("set -e; ");
        for d in &hidden {
            script.push_str(&format!("mount --bind {:?} {:?}; ", home.display().to_string(), d.display().to_string()));
        }
        script.push_str("exec \"$@\"");
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh", env!("CARGO_BIN_EXE_fotovakt")]);
        c
    };
    cmd.arg("classify").args(args);
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("FOTOVAKT_CONFIG", "/dev/null")
        .env("NO_COLOR", "1");
    Some(cmd.output().expect("classify"))
}

/// Without ONNX Runtime, `classify /no/such.jpg` talked about ONNX Runtime, and a text file
/// got "photos are decided by context". Now each file's own problem comes first; only a
/// photo that needs the model says it is missing, with how to get it, once in full.
#[test]
fn classify_without_onnx_runtime_names_each_file_s_own_problem() {
    let phone = Phone::new();
    let missing = phone.dir.path().join("no/such.jpg");
    let text = phone.dir.path().join("README.md");
    std::fs::write(&text, "# not a photo\n").expect("write");
    let photo = phone.shoot("IMG_1.jpg", 1);
    let again = phone.shoot("IMG_2.jpg", 2);
    let Some(o) = classify_without_runtime(phone.dir.path(), &[&missing, &text, &photo, &again]) else {
        common::skip("a system Python's onnxruntime cannot be hidden without root");
        return;
    };
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "nothing was scored");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert_eq!(lines[0], format!("fotovakt: {}: No such file or directory", missing.display()));
    assert_eq!(lines[1], format!("fotovakt: {}: not an image: unknown format", text.display()));
    assert!(
        lines[2].starts_with(&format!("fotovakt: {}: cannot be scored: ONNX Runtime not found", photo.display()))
            && lines[2].contains("pip install onnxruntime"),
        "{err}"
    );
    assert_eq!(
        lines[3],
        format!("fotovakt: {}: cannot be scored: the classifier is not available (see above)", again.display())
    );
    assert!(!err.contains("decided by context"), "{err}");
}

/// The lease probe takes a read lease and drops it at once. A writer that opens the file in
/// between breaks the lease, and the kernel signals the lease holder with SIGIO, whose
/// default action ends the process. The agent pauses while holding the lease
/// (`FOTOVAKT_PAUSE=lease_held`), the test opens the photo for writing meanwhile: the writer
/// waits for the lease to be dropped, and the agent carries on.
#[test]
fn a_writer_opening_a_photo_during_the_lease_probe_does_not_kill_the_agent() {
    let phone = Phone::new();
    let photo = phone.shoot("IMG_lease.jpg", 5);
    let mut child = phone
        .command(&["scan"], &[("FOTOVAKT_PAUSE", "lease_held:1500")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("scan");
    let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let paused = loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut err, &mut line).expect("read") == 0 {
            break false;
        }
        seen.push_str(&line);
        if line.contains("fault point lease_held: pausing") {
            break true;
        }
    };
    if !paused {
        let _ = child.wait();
        common::skip(format!("no read lease here (not the owner, or a filesystem without leases): {seen}"));
        return;
    }
    let t = std::time::Instant::now();
    let writer = std::fs::OpenOptions::new().read(true).write(true).open(&photo).expect("open for writing");
    let waited = t.elapsed();
    drop(writer);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("read");
    let status = child.wait().expect("wait");
    assert_ne!(status.signal(), Some(libc::SIGIO), "killed by SIGIO: {seen}{rest}");
    assert!(status.success(), "{status:?}: {seen}{rest}");
    assert!(waited >= Duration::from_millis(300), "the writer waited for the lease to be dropped ({waited:?})");
}
