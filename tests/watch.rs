//! The real watcher (notify/inotify) on real folders: Android-style writes, slow writers,
//! bursts, a full lane, a camera folder made again, a panic on the watcher thread, and the
//! `watch` command's signal handling. The event logic itself (settling, rename pairs,
//! overflow, the durability barrier) is covered by the data-driven cases in
//! `src/watch/test_cases/`; these prove the real notify/inotify wiring.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use common::{assert_invariant, sha256, wait_until, Phone};

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
use fotovakt::agent::{Agent, Outcome, OutcomeKind};
use fotovakt::sample::SamplePhoto;
use fotovakt::watch::{WatchError, WatchGuard, WatchOptions};

fn start(phone: &Phone, opts: WatchOptions) -> (Arc<Agent>, WatchGuard, crossbeam_channel::Receiver<Outcome>) {
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Arc::new(Agent::open(config).expect("agent opens"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = WatchGuard::spawn(agent.clone(), opts, move |o: &Outcome| {
        let _ = tx.send(o.clone());
    })
    .expect("watcher starts");
    (agent, guard, rx)
}

#[test]
fn android_style_writes_during_a_session_are_quarantined_and_others_kept() {
    let phone = Phone::new();
    let (agent, guard, rx) = start(&phone, WatchOptions::default());
    let personal = phone.shoot("IMG_personal.jpg", 1);
    let o = rx.recv_timeout(Duration::from_secs(10)).expect("decision for the personal photo");
    assert_eq!(o.kind, OutcomeKind::Kept, "{o:?}");
    agent.session_start("K-1", Some("test"), None).expect("session");
    let mut photos = Vec::new();
    for i in 0..3 {
        phone.shoot(&format!("IMG_case_{i}.jpg"), 10 + i);
        // The same bytes `shoot` wrote; the file itself may be in the store already.
        let bytes = SamplePhoto { seed: 10 + i, ..SamplePhoto::default() }.jpeg();
        photos.push((format!("IMG_case_{i}.jpg"), sha256_of(&bytes)));
    }
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 3), "3 photos in the store");
    let report = guard.stop().expect("watcher stops");
    assert_eq!(phone.in_camera(), vec!["IMG_personal.jpg".to_string()]);
    assert!(personal.exists());
    assert_invariant(&phone, &photos);
    assert!(report.handled >= 4, "{report:?}");
    let items = agent.ledger().items(Some("K-1")).expect("items");
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i.source == "session" && i.quarantined_at_ms.is_some()));
    // Pending files were never taken: the ledger has no `.pending-` path.
    assert!(agent
        .ledger()
        .items(None)
        .expect("items")
        .iter()
        .all(|i| !i.original_path.to_string_lossy().contains(".pending-")));
}

#[test]
fn a_slow_writer_is_never_taken_half_written() {
    let phone = Phone::new();
    let (agent, guard, _rx) = start(&phone, WatchOptions::default());
    agent.session_start("K-2", None, None).expect("session");
    let bytes = SamplePhoto { width: 800, height: 600, seed: 7, ..Default::default() }.jpeg();
    let path = phone.camera.join("IMG_slow.jpg");
    {
        // Written straight under its final name, in pieces, pausing longer than `settle`.
        let mut f = std::fs::File::create(&path).expect("create");
        for chunk in bytes.chunks(bytes.len() / 4 + 1) {
            f.write_all(chunk).expect("write");
            f.flush().expect("flush");
            std::thread::sleep(Duration::from_millis(450));
        }
    }
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 1), "the finished photo is stored");
    drop(guard);
    let stored = &phone.stored()[0];
    assert_eq!(sha256(stored), want, "the store holds the complete photo, not a prefix");
    assert!(stored.to_string_lossy().contains(&want));
    assert!(agent.verify().expect("verify").problems.is_empty());
}

#[test]
fn a_burst_of_1000_photos_none_missed() {
    let phone = Phone::new();
    let (agent, guard, _rx) = start(&phone, WatchOptions::default());
    agent.session_start("BURST", None, None).expect("session");
    let mut photos = Vec::new();
    for i in 0..1000u64 {
        let bytes = SamplePhoto { width: 64, height: 48, seed: i + 1, quality: 80, ..Default::default() }.jpeg();
        let name = format!("IMG_{i:04}.jpg");
        // Hash the bytes, not the file: the watcher may have moved it already.
        fotovakt::sample::write_like_android(&phone.camera, &name, &bytes).expect("write");
        photos.push((name, sha256_of(&bytes)));
    }
    assert!(
        wait_until(Duration::from_secs(90), || phone.stored().len() == 1000),
        "all 1000 in the store (have {})",
        phone.stored().len()
    );
    drop(guard);
    assert!(phone.in_camera().is_empty(), "{:?}", phone.in_camera());
    assert_invariant(&phone, &photos);
    let v = agent.verify().expect("verify");
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.files, 1000);
}

#[test]
fn a_full_lane_turns_into_a_rescan_and_nothing_is_missed() {
    let phone = Phone::new();
    // A lane of 4 and a slow consumer: the callback must fall back to asking for a rescan.
    let opts = WatchOptions { lane_capacity: 4, consumer_delay: Duration::from_millis(30) };
    let (agent, guard, _rx) = start(&phone, opts);
    agent.session_start("OVERFLOW", None, None).expect("session");
    let mut photos = Vec::new();
    for i in 0..60u64 {
        let bytes = SamplePhoto { width: 32, height: 32, seed: 500 + i, ..Default::default() }.jpeg();
        let name = format!("IMG_o{i:03}.jpg");
        // Hash the bytes, not the file: the watcher may have moved it already.
        fotovakt::sample::write_like_android(&phone.camera, &name, &bytes).expect("write");
        photos.push((name, sha256_of(&bytes)));
    }
    assert!(wait_until(Duration::from_secs(30), || phone.stored().len() == 60), "have {}", phone.stored().len());
    let report = guard.stop().expect("stop");
    assert!(report.rescans >= 1 && report.lane_full >= 1, "the rescan path ran: {report:?}");
    assert_invariant(&phone, &photos);
}

#[test]
fn watch_command_runs_until_sigterm_and_reconciles_at_start() {
    let phone = Phone::new();
    // A photo already there before the agent starts, during an open session.
    let out = phone.run(&["session", "start", "--case", "K-9"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let early = phone.shoot("IMG_before.jpg", 3);
    let early_sha = sha256(&early);
    // Backdate it so it is not "too fresh" for the start-up reconcile.
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(&early).expect("open").set_modified(old).expect("mtime");
    let early_sha_after = sha256(&early);
    assert_eq!(early_sha, early_sha_after);
    let cfg = phone.dir.path().join("test-config.toml");
    std::fs::write(&cfg, "[classifier]\nenabled = false\n").expect("cfg");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .args(["--store"])
        .arg(&phone.store)
        .args(["watch", "--camera"])
        .arg(&phone.camera)
        .env("FOTOVAKT_CONFIG", &cfg)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn watch");
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 1), "reconciled at start");
    phone.shoot("IMG_live.jpg", 4);
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 2), "live photo handled");
    // Twice back to back, as `timeout` and service managers do when they signal the child
    // and then its process group: still one clean stop, not the "exit at once" of a second.
    for _ in 0..2 {
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "watch exits 0 on SIGTERM: {status:?}");
    let mut s = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut s).expect("read");
    let report: serde_json::Value = serde_json::from_str(s.trim()).expect("JSON report on stdout");
    assert!(report["handled"].as_u64().unwrap_or(0) >= 2, "{report}");
    assert!(phone.in_camera().is_empty());
}

/// A camera folder that is not there at start (a new phone's camera app makes it with the
/// first photo) is watched as soon as it appears, and again after it is deleted and made
/// anew (same path, perhaps the same inode number); its photos are handled within seconds,
/// not at the reconcile timer (an hour here).
#[test]
fn a_camera_folder_that_appears_later_or_is_made_again_is_watched_at_once() {
    let phone = Phone::new();
    std::fs::remove_dir(&phone.camera).expect("no camera folder yet");
    let mut config = phone.config();
    config.classifier.enabled = false;
    config.reconcile_interval = Duration::from_secs(3600);
    let agent = Arc::new(Agent::open(config).expect("agent opens without its camera folder"));
    agent.session_start("K-20", None, None).expect("session");
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = WatchGuard::spawn(agent.clone(), WatchOptions::default(), move |o: &Outcome| {
        let _ = tx.send(o.clone());
    })
    .expect("the watcher starts and waits for the folder");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::create_dir(&phone.camera).expect("camera app makes the folder");
    let first = phone.shoot("IMG_first.jpg", 40);
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 1), "the first photo was handled");
    assert!(!first.exists());
    // Deleted and made again at once (a user clearing the folder, a camera app reset).
    std::fs::remove_dir_all(&phone.camera).expect("rm");
    std::fs::create_dir(&phone.camera).expect("mkdir");
    std::thread::sleep(Duration::from_millis(1500));
    let second = phone.shoot("IMG_second.jpg", 41);
    assert!(wait_until(Duration::from_secs(10), || phone.stored().len() == 2), "the remade folder is watched");
    assert!(!second.exists());
    let report = guard.stop().expect("stop");
    let quarantined = rx.try_iter().filter(|o| o.kind == OutcomeKind::Quarantined).count();
    assert_eq!(quarantined, 2, "{report:?}");
    assert!(report.reconciles < 5, "handled by watches, not by a reconcile loop: {report:?}");
}

/// A panic on the watcher's thread (here in the observer, at the start-up reconcile) comes back
/// from `stop` as an error, not as a clean stop with empty counters.
#[test]
fn a_panic_on_the_watcher_thread_is_an_error_from_stop() {
    let phone = Phone::new();
    let photo = phone.shoot("IMG_before.jpg", 5);
    let old = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options().write(true).open(&photo).expect("open").set_modified(old).expect("mtime");
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Arc::new(Agent::open(config).expect("agent opens"));
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = WatchGuard::spawn(agent, WatchOptions::default(), move |o: &Outcome| {
        let _ = tx.send(o.kind);
        panic!("observer refused {}", o.path);
    })
    .expect("watcher starts");
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("the observer ran"), OutcomeKind::Kept);
    match guard.stop() {
        Err(WatchError::Panicked { message }) => {
            assert!(message.starts_with("observer refused") && message.ends_with("IMG_before.jpg"), "{message}")
        }
        other => panic!("a panicked watcher must not look like a clean stop: {other:?}"),
    }
}
