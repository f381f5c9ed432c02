//! A store that cannot take photos for a while (issue 23): a full disk or a disk whose writes
//! fail neither stops `watch` nor makes it spin, a stuck photo keeps one item however many
//! tries its move takes, and no failure becomes a zero or a clean exit.
//!
//! The campaign (`tests/common/stuck.rs`) runs four faults side by side for
//! `FOTOVAKT_STUCK_SECONDS` (CI: 90 s; `bash scripts/stuck-campaign [SECONDS]` runs the ten
//! minutes the issue asks for). 90 s is enough for CI: a photo's tries back off 2, 4, 8, 16,
//! 32 s, so it spans five backoff steps and the probe reaches its 30 s cap; the CPU and ledger
//! bounds are checked over the busiest part (the first tries come fastest), and a photo tried
//! six times must still have added at most a handful of rows. The long run adds the steps up
//! to the 5 min cap.
//!
//! Needs root and `/dev/fuse` (tmpfs and FUSE mounts), as CI has; these tests fail, never
//! skip, without them.

mod common;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

#[path = "common/stuck.rs"]
mod stuck;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{stderr, wait_until, Phone};
use fotovakt::health::StoreState;
use fotovakt::sample::SamplePhoto;
use fotovakt::{Agent, OutcomeKind, RetryCause};

fn need_root() {
    assert!(
        mediafs::MediaFs::unavailable().is_none(),
        "these tests need root and /dev/fuse: {:?}",
        mediafs::MediaFs::unavailable()
    );
}

/// A tmpfs of `size` at `dir`, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        need_root();
        std::fs::create_dir_all(dir).expect("mkdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount a tmpfs at {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {}", self.0.display());
    }

    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).expect("filler");
        for chunk in [1 << 20, 4096] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_stuck_store_neither_stops_nor_spins_the_guard() {
    let secs = stuck::seconds_from_env(90);
    let figs = stuck::run_all(secs);
    let table = stuck::table(&figs);
    println!("stuck-store campaign, {secs} s per fault:\n{table}");
    assert!(figs.iter().all(|f| f.problems.is_empty()), "{table}");
}

/// The campaign as the issue asks for it: `bash scripts/stuck-campaign [SECONDS]` (600 s).
#[test]
#[ignore = "long campaign; run with scripts/stuck-campaign"]
fn long_stuck_store_campaign() {
    let secs = stuck::seconds_from_env(600);
    let figs = stuck::run_all(secs);
    let table = stuck::table(&figs);
    println!("stuck-store campaign, {secs} s per fault:\n{table}");
    assert!(figs.iter().all(|f| f.problems.is_empty()), "{table}");
}

/// On a full disk `watch` does not exit: it says once that it cannot open (or create) its
/// store, never that it created one, and a stop while it waits is not a clean exit.
#[test]
fn watch_waits_for_a_store_it_cannot_create_and_says_so_once() {
    let phone = Phone::new();
    let tiny = Tmpfs::mount(&phone.dir.path().join("tiny"), "2m");
    tiny.fill();
    let store = tiny.0.join("store");
    std::fs::write(phone.dir.path().join("none.toml"), "[classifier]\nenabled = false\n").expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&store)
        .args(["watch", "--camera"])
        .arg(&phone.camera)
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("none.toml"))
        .env("FOTOVAKT_LOG", "fotovakt=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watch");
    // Tries at 0, 1 and 3 s: still running, still waiting.
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().expect("try_wait").is_none(), "watch exited on a full disk");
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a stop before the store opened is no clean exit: {err}");
    assert_eq!(err.matches("the store cannot be opened for writing").count(), 1, "said once: {err}");
    assert!(!err.contains("created a new store"), "no store was created: {err}");
    assert!(err.contains("stopped before the store could be opened"), "{err}");
}

/// A photo whose move keeps failing (it does not fit in the store) is tried again with the
/// same item: its first failed try is recorded, the later ones are counted on its ending. It
/// waits out of sight in staging meanwhile (issue 25), under the name its open stash row gives,
/// and goes into the store from there.
#[test]
fn a_retried_move_keeps_one_item_and_counts_its_tries() {
    let phone = Phone::new();
    let tiny = Tmpfs::mount(&phone.dir.path().join("tiny"), "1m");
    let mut config = phone.config();
    config.store = Some(tiny.0.join("store"));
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    agent.session_start("DISK", None, None).expect("session");
    let big = SamplePhoto { width: 3000, height: 2000, seed: 23, quality: 100, ..Default::default() }.jpeg();
    assert!(big.len() > 1 << 20, "the photo must not fit: {} bytes", big.len());
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_big.jpg", &big).expect("write");
    for _ in 0..4 {
        let o = common::handle(&agent, &p);
        assert_eq!((o.kind, o.retry), (OutcomeKind::Retry, Some(RetryCause::Store)), "{o:?}");
    }
    let h = agent.health();
    assert_eq!((h.store, h.waiting), (StoreState::Failing, 1), "{h:?}");
    assert!(h.reason.as_deref().unwrap_or("").contains("No space"), "{h:?}");
    let items = agent.ledger().items(None).expect("items");
    assert_eq!(items.len(), 1, "one item, however many tries: {items:?}");
    let kinds =
        |id| -> Vec<&'static str> { agent.ledger().events_of(id).expect("events").iter().map(|e| e.kind).collect() };
    // The first failure only: the copy that did not fit (`move_aborted`), or, when the full
    // disk met the ledger's own write-ahead log first, the intent that could not be made
    // durable (`move_rolled_back`). Both are a full disk; which one comes first depends on
    // where the WAL stands.
    let first = kinds(items[0].id);
    let failed = *first.last().expect("events");
    assert!(["move_aborted", "move_rolled_back"].contains(&failed), "{first:?}");
    assert_eq!(first, ["intake", "stashed", "decided", failed], "the first failure only");
    // Out of sight while it waits: in staging, under the name its open stash row gives.
    assert!(!p.exists(), "not back in the camera folder between tries");
    let staged = phone.staged();
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(common::sha256(&staged[0]), hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&big)));
    let rows = agent.ledger().pending_moves().expect("moves");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((&rows[0].src, &rows[0].dst, rows[0].item_id), (&p, &staged[0], items[0].id), "{rows:?}");
    // The watcher's reconcile (and `pending`) still list it, by its camera name.
    assert_eq!(agent.pending_files(Duration::ZERO).expect("pending"), vec![p.clone()]);
    tiny.resize("32m");
    let o = common::handle(&agent, &p);
    assert_eq!((o.kind, o.item), (OutcomeKind::Quarantined, Some(items[0].id)), "{o:?}");
    assert_eq!(kinds(items[0].id), ["intake", "stashed", "decided", failed, "quarantined"]);
    assert!(phone.staged().is_empty());
    assert!(agent.ledger().pending_moves().expect("moves").is_empty());
    let last = agent.ledger().events_of(items[0].id).expect("events").pop().expect("event");
    assert_eq!(last.data["tries"], 5, "{}", last.data);
    assert!(last.data["exposure_ms"].as_i64().is_some(), "{}", last.data);
    assert_eq!(agent.ledger().items(None).expect("items").len(), 1);
    assert_eq!(agent.health().store, StoreState::Ok);
    assert!(agent.verify().expect("verify").problems.is_empty());
    assert!(!p.exists());
}

/// The officer's own photo never stays an item, not even one whose move into the store failed
/// first (issue 29 beside issue 23's one item per file): decided `keep` on a later try (the
/// duty schedule changed meanwhile), the item of the failed move is forgotten, a keyed record
/// stands for the photo, the photo no longer waits for the store, and the chain verifies.
#[test]
fn a_photo_decided_personal_after_its_move_failed_keeps_no_item() {
    use fotovakt::config::{ClockTime, Shift, Weekday};
    let phone = Phone::new();
    let tiny = Tmpfs::mount(&phone.dir.path().join("tiny"), "1m");
    let mut config = phone.config();
    config.store = Some(tiny.0.join("store"));
    config.classifier.enabled = false;
    let mut on_duty = config.clone();
    let days = vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
    on_duty.duty.shifts = vec![Shift { days, start: ClockTime(0), end: ClockTime(0) }];
    let big = SamplePhoto { width: 3000, height: 2000, seed: 29, quality: 100, ..Default::default() }.jpeg();
    assert!(big.len() > 1 << 20, "the photo must not fit: {} bytes", big.len());
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_own.jpg", &big).expect("write");
    {
        // On duty, unjudged: to be quarantined, and the store is too small for it.
        let agent = Agent::open(on_duty).expect("agent");
        for _ in 0..3 {
            let o = common::handle(&agent, &p);
            assert_eq!((o.kind, o.retry), (OutcomeKind::Retry, Some(RetryCause::Store)), "{o:?}");
        }
        let items = agent.ledger().items(None).expect("items");
        assert_eq!(items.len(), 1, "one item, however many tries: {items:?}");
        assert_eq!(agent.health().waiting, 1);
        assert!(!p.exists() && phone.staged().len() == 1, "it waits in staging");
    }
    // Off duty now: the same photo is the officer's own.
    let agent = Agent::open(config).expect("agent");
    let o = common::handle(&agent, &p);
    assert_eq!((o.kind, o.item, o.retry), (OutcomeKind::Kept, None, None), "{o:?}");
    assert!(p.exists(), "a kept photo stays where it is");
    assert!(agent.ledger().items(None).expect("items").is_empty(), "no item for the officer's own photo");
    assert_eq!(agent.health().waiting, 0, "it no longer waits for the store");
    let v = agent.verify().expect("verify");
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    // intake, stashed, decided, move_aborted, and the return of the photo from staging by the
    // recovery when this agent opened (it waited there for the store).
    assert_eq!(v.pruned, 5, "intake, stashed, decided, move_aborted and returned pruned: {v:?}");
    let db = rusqlite::Connection::open_with_flags(
        tiny.0.join("store/ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("ledger");
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql);
    assert_eq!(count("SELECT count(*) FROM personal WHERE state = 'kept'"), 1, "one keyed record");
    assert_eq!(count("SELECT count(*) FROM events WHERE data LIKE '%IMG_own%'"), 0, "no event names the photo");
    // Decided once: the next look reports the keyed record and records nothing.
    let before = count("SELECT count(*) FROM events");
    let again = common::handle(&agent, &p);
    assert_eq!((again.kind, again.item), (OutcomeKind::Kept, None), "{again:?}");
    assert_eq!(count("SELECT count(*) FROM events"), before);
}

/// A durability barrier that fails at the end of `watch` is an exit code, not a log line.
#[test]
fn a_failed_final_barrier_makes_watch_exit_non_zero() {
    need_root();
    let phone = Phone::new();
    let (b, m) = (phone.dir.path().join("backing"), phone.dir.path().join("mnt"));
    std::fs::create_dir_all(&b).expect("backing");
    std::fs::create_dir_all(&m).expect("mount point");
    let fs = mediafs::MediaFs::mount_with(&b, &m, mediafs::Options { phone: false, power: None }).expect("mediafs");
    let store = m.join("store");
    let log = phone.dir.path().join("watch.log");
    std::fs::write(phone.dir.path().join("none.toml"), "[classifier]\nenabled = false\n").expect("config");
    // A session: the photo is to be quarantined.
    let session = Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&store)
        .args(["session", "start", "--case", "K"])
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("none.toml"))
        .output()
        .expect("session");
    assert!(session.status.success(), "{}", stderr(&session));
    let mut child = Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&store)
        .args(["watch", "--camera"])
        .arg(&phone.camera)
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("none.toml"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("watch");
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(wait_until(Duration::from_secs(60), || read().contains("watching folder")), "{}", read());
    // Every fsync under the store fails from now on: the photo's decision is committed, but
    // nothing can make it durable.
    fs.fail(mediafs::Op::Fsync, Some(Path::new("store")), libc::EIO);
    phone.shoot("IMG_1.jpg", 1);
    assert!(wait_until(Duration::from_secs(30), || read().contains("durability barrier failed")), "{}", read());
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut report = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut report).expect("report");
    let status = child.wait().expect("wait");
    fs.clear_faults();
    assert_eq!(status.code(), Some(1), "signal {:?}; log:\n{}", status.signal(), read());
    assert!(read().contains("the last durability barrier failed"), "{}", read());
    let r: serde_json::Value = serde_json::from_str(report.trim()).expect("the report is still printed");
    assert!(r["handled"].as_u64() >= Some(1), "{r}");
}

/// `stats` never shows a store it could not list as empty: the sizes are unknown in every
/// format, and the statistics as JSON are an error or a text, never an empty one.
#[test]
fn stats_show_an_unlistable_store_as_unknown_not_zero() {
    let phone = Phone::new();
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    let objects = phone.store.join("objects");
    std::fs::remove_dir_all(&objects).expect("remove objects");
    std::fs::write(&objects, b"not a folder").expect("a file where the folder was");
    let s = agent.stats(false).expect("stats");
    assert_eq!((s.store.files, s.store.bytes), (None, None), "{:?}", s.store);
    assert!(s.store.error.as_deref().is_some_and(|e| e.contains("cannot list the store")), "{:?}", s.store);
    let table = fotovakt::stats::table(&s);
    assert!(table.contains("store       unknown (cannot list the store"), "{table}");
    let om = fotovakt::stats::openmetrics(&s);
    assert!(om.contains("fotovakt_store_files NaN") && om.contains("fotovakt_store_bytes NaN"), "{om}");
    assert!(om.contains("fotovakt_store_health{state=\"ok\"} 1"), "{om}");
    let json: serde_json::Value = serde_json::from_str(&agent.stats_json().expect("json")).expect("JSON");
    assert!(json["store"]["files"].is_null() && json["store"]["bytes"].is_null(), "{json}");
    assert_eq!(json["health"]["store"], "ok", "{json}");
    assert!(json["health"]["free_bytes"].as_u64().is_some(), "{json}");
    // A ledger that fails makes the JSON an error, not an empty text.
    agent.ledger().conn().execute_batch("DROP TABLE corrections; DROP TABLE items").expect("break the ledger");
    match agent.stats_json() {
        Err(fotovakt::agent::Error::Ledger(_)) => {}
        other => panic!("expected a ledger error, got {other:?}"),
    }
}

/// A photo that waits in staging for a full store belongs to its live agent: a second agent
/// opened meanwhile (an officer's command; here in the same process, as the Android bridge may
/// open one) leaves it in staging, and tagging it by its camera path gives its item the case,
/// out of sight still; the first agent then moves it into the store under that case.
#[test]
fn a_photo_waiting_in_staging_stays_there_for_its_agent_and_is_tagged_by_path() {
    let phone = Phone::new();
    let tiny = Tmpfs::mount(&phone.dir.path().join("tiny"), "1m");
    let mut config = phone.config();
    config.store = Some(tiny.0.join("store"));
    config.classifier.enabled = false;
    let watcher = Agent::open(config.clone()).expect("agent");
    watcher.session_start("DISK", None, None).expect("session");
    let big = SamplePhoto { width: 3000, height: 2000, seed: 29, quality: 100, ..Default::default() }.jpeg();
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_wait.jpg", &big).expect("write");
    let o = common::handle(&watcher, &p);
    assert_eq!((o.kind, o.retry), (OutcomeKind::Retry, Some(RetryCause::Store)), "{o:?}");
    let staged = phone.staged();
    assert_eq!(staged.len(), 1, "{staged:?}");
    let item = o.item.expect("item");
    // The officer's command opens (and recovers) beside the live agent: the file stays put.
    let officer = Agent::open_without_model(config).expect("second agent");
    assert_eq!(phone.staged(), staged, "a live agent's staged file is left alone");
    assert!(!p.exists());
    let tagged = officer.tag(p.to_str().expect("utf-8"), "TAGGED-1", Some("kari"), None).expect("tag by path");
    assert_eq!((tagged.kind, tagged.item), (OutcomeKind::Retry, Some(item)), "{tagged:?}");
    let it = officer.ledger().items(None).expect("items");
    assert_eq!(it.len(), 1, "the same item gets the case: {it:?}");
    assert_eq!(it[0].case_id.as_deref(), Some("TAGGED-1"), "{it:?}");
    assert_eq!(phone.staged(), staged, "still out of sight, waiting for the store");
    assert!(officer.verify().expect("verify").problems.is_empty());
    drop(officer);
    tiny.resize("32m");
    let o = common::handle(&watcher, &p);
    assert_eq!((o.kind, o.item), (OutcomeKind::Quarantined, Some(item)), "{o:?}");
    let it = watcher.ledger().items(None).expect("items");
    assert_eq!((it[0].state, it[0].case_id.as_deref()), (fotovakt::ledger::ItemState::Quarantined, Some("TAGGED-1")));
    assert!(phone.staged().is_empty());
    assert!(watcher.ledger().pending_moves().expect("moves").is_empty());
    assert!(watcher.verify().expect("verify").problems.is_empty());
}
