//! The store and the move: placement refusals, cross-filesystem moves, crash recovery at
//! every fault point (the real binary, killed with SIGKILL), tamper detection, officers'
//! tag and release.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use common::{assert_invariant, sha256, stderr, stdout, Phone};
use fotovakt::agent::{Agent, OutcomeKind};

fn session(phone: &Phone, case: &str) {
    let o = phone.run(&["session", "start", "--case", case]);
    assert!(o.status.success(), "session start: {}", stderr(&o));
}

#[test]
fn a_store_inside_a_synced_or_media_folder_is_refused_at_start() {
    let phone = Phone::new();
    let synced = phone.dir.path().join("phone/DCIM/fotovakt-store");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"));
    let out = cmd.arg("--store").arg(&synced).args(["scan", "--camera"]).arg(&phone.camera).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("refusing store") && err.contains(".stfolder"), "{err}");
    assert!(!synced.exists(), "nothing was created inside the synced folder");
    assert!(phone.dir.path().join("phone/DCIM/.stfolder").is_dir(), "the sync marker is untouched");

    let dropbox = phone.dir.path().join("Dropbox");
    std::fs::create_dir_all(&dropbox).expect("mkdir");
    std::fs::write(dropbox.join(".dropbox"), b"{}").expect("marker");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(dropbox.join("a/b"))
        .arg("stats")
        .output()
        .expect("run");
    assert!(!out.status.success() && stderr(&out).contains("Dropbox"), "{}", stderr(&out));

    let pictures = phone.dir.path().join("Pictures/store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&pictures)
        .arg("stats")
        .output()
        .expect("run");
    assert!(stderr(&out).contains("media-indexed folder Pictures"), "{}", stderr(&out));
}

#[test]
fn store_layout_is_private() {
    let phone = Phone::new();
    session(&phone, "K-1");
    phone.shoot("IMG_1.jpg", 1);
    let o = phone.run(&["scan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for dir in [phone.store.clone(), phone.store.join("objects"), phone.store.join("tmp")] {
        assert_eq!(std::fs::metadata(&dir).expect("dir").mode() & 0o777, 0o700, "{}", dir.display());
    }
    assert!(phone.store.join(".nomedia").exists());
    for f in phone.stored() {
        assert_eq!(std::fs::metadata(&f).expect("file").mode() & 0o777, 0o600, "{}", f.display());
    }
    // A store others can read is refused.
    std::fs::set_permissions(&phone.store, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = phone.run(&["stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("lets others read it"), "{}", stderr(&o));
}

/// The watcher and an officer's command open the store at the same moment: neither may fail
/// on the other's writability probe (the power-cut campaign's SQLite test once saw
/// `store …/tmp/.write-probe: No such file or directory` from exactly this race).
#[test]
fn the_store_opens_from_many_openers_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    std::thread::scope(|s| {
        let openers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..40).filter_map(|_| fotovakt::quarantine::Store::open(&root, &[], &[]).err()).collect::<Vec<_>>()
                })
            })
            .collect();
        for o in openers {
            let failed = o.join().expect("opener thread");
            assert!(
                failed.is_empty(),
                "concurrent Store::open failed: {:?}",
                failed.iter().map(|e| e.to_string()).collect::<Vec<_>>()
            );
        }
    });
}

/// Recovery sweeps `tmp/` while other processes make and remove their write probes there
/// (an officer's command opening the store as the watcher starts): a probe gone between the
/// listing and the removal is not an error that fails the open (issue 23).
#[test]
fn sweeping_partial_copies_while_another_opener_probes_never_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let store = fotovakt::quarantine::Store::open(&root, &[], &[]).expect("store");
    let mut failures = Vec::new();
    let mut sweeps = 0;
    std::thread::scope(|s| {
        let openers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| (0..1500).filter(|_| fotovakt::quarantine::Store::open(&root, &[], &[]).is_err()).count())
            })
            .collect();
        while openers.iter().any(|o| !o.is_finished()) {
            if let Err(e) = store.sweep_tmp() {
                failures.push(e.to_string());
            }
            sweeps += 1;
        }
        for o in openers {
            assert_eq!(o.join().expect("opener"), 0, "opens beside the sweeps");
        }
    });
    assert!(
        failures.is_empty(),
        "{} of {sweeps} sweeps failed beside the openers' probes: {failures:?}",
        failures.len()
    );
}

#[test]
fn a_move_across_filesystems_is_copied_verified_and_the_original_removed() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        common::skip("/dev/shm is not available on this machine");
        return;
    }
    let phone = Phone::with_store_under(Some(shm));
    let camera_dev = std::fs::metadata(&phone.camera).expect("camera").dev();
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    assert_ne!(camera_dev, std::fs::metadata(agent.store().root()).expect("store").dev(), "different filesystems");
    agent.session_start("X-1", None, None).expect("session");
    let p = phone.shoot("IMG_x.jpg", 42);
    let sha = sha256(&p);
    let mtime = std::fs::metadata(&p).expect("meta").mtime();
    let o = common::handle(&agent, &p);
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    assert!(!p.exists());
    let stored = &phone.stored()[0];
    assert_eq!(sha256(stored), sha);
    assert_eq!(std::fs::metadata(stored).expect("meta").mtime(), mtime, "capture mtime kept on the copy");
    assert_invariant(&phone, &[("IMG_x.jpg".into(), sha.clone())]);
    // And back out again across filesystems.
    let r = agent.release(&o.item.expect("item").to_string(), "test", Some("me")).expect("release");
    assert_eq!(sha256(Path::new(&r.path)), sha);
    assert!(phone.stored().is_empty());
    assert!(agent.verify().expect("verify").problems.is_empty());
    let _ = std::fs::remove_dir_all(&phone.store);
}

/// Kill the agent with SIGKILL at one fault point while it quarantines a photo, restart it,
/// and check the invariant and the ledger.
fn crash_at(point: &str, store_parent: Option<&Path>) {
    let phone = Phone::with_store_under(store_parent);
    session(&phone, "CRASH");
    let p = phone.shoot("IMG_c.jpg", 9);
    let photos = vec![("IMG_c.jpg".to_string(), sha256(&p))];
    let killed = phone.run_env(&["scan"], &[("FOTOVAKT_FAULT", point)]);
    let was_killed = killed.status.signal() == Some(libc::SIGKILL);
    // At every instant: at the original path, in staging, or in the store (possibly two of
    // them, mid-way), never none.
    let at_origin = p.exists();
    let in_store = !phone.stored().is_empty();
    let staged = phone.staged().iter().any(|f| sha256(f) == photos[0].1);
    assert!(at_origin || in_store || staged, "{point}: photo is nowhere after the kill");
    // Restart: recovery completes or rolls back, then the scan finishes the job.
    let again = phone.run(&["scan"]);
    assert!(again.status.success(), "{point}: restart failed: {}", stderr(&again));
    assert_invariant(&phone, &photos);
    assert_eq!(phone.stored().len(), 1, "{point}: quarantined after restart");
    assert!(phone.staged().is_empty(), "{point}: nothing left in staging after recovery: {:?}", phone.staged());
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{point}: verify after recovery: {}", stdout(&v));
    if let Some(parent) = store_parent {
        let _ = std::fs::remove_dir_all(parent.join(phone.store.file_name().unwrap_or_default()));
    }
    eprintln!("{point}: killed={was_killed} at_origin={at_origin} staged={staged} in_store={in_store}: recovered");
}

#[test]
fn crash_at_every_fault_point_same_filesystem() {
    for point in fotovakt::fault::POINTS {
        crash_at(point, None);
    }
}

#[test]
fn crash_at_every_fault_point_across_filesystems() {
    if !Path::new("/dev/shm").is_dir() {
        common::skip("/dev/shm is not available on this machine");
        return;
    }
    for point in fotovakt::fault::POINTS {
        crash_at(point, Some(Path::new("/dev/shm")));
    }
}

#[test]
fn verify_detects_a_changed_file_and_an_edited_ledger() {
    let phone = Phone::new();
    session(&phone, "T-1");
    for i in 0..3 {
        phone.shoot(&format!("IMG_{i}.jpg"), 20 + i);
    }
    assert!(phone.run(&["scan"]).status.success());
    let ok = phone.run(&["verify"]);
    assert!(ok.status.success(), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("3 stored files verified"), "{}", stdout(&ok));

    // Flip one byte of a stored original.
    let victim = phone.stored()[1].clone();
    let mut bytes = std::fs::read(&victim).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, &bytes).expect("write");
    let bad = phone.run(&["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("has changed"), "{}", stdout(&bad));
    bytes[mid] ^= 0x01;
    std::fs::write(&victim, &bytes).expect("restore");
    assert!(phone.run(&["verify"]).status.success());

    // A file planted in the store, and a stored original taken away: still caught now that
    // `verify` looks again at what changed since its snapshot before it reports.
    let planted = victim.with_file_name(format!("{}-999.jpg", "ab".repeat(32)));
    std::fs::copy(&victim, &planted).expect("plant");
    let gone = phone.stored()[0].clone();
    let kept = std::fs::read(&gone).expect("read");
    std::fs::remove_file(&gone).expect("take away");
    let bad = phone.run(&["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("no quarantined item accounts for"), "{}", stdout(&bad));
    assert!(stdout(&bad).contains(": stored file objects/"), "{}", stdout(&bad));
    std::fs::remove_file(&planted).expect("unplant");
    std::fs::write(&gone, kept).expect("put back");
    assert!(phone.run(&["verify"]).status.success());

    // Edit a ledger row behind the agent's back.
    let db = rusqlite::Connection::open(phone.store.join("ledger.sqlite")).expect("db");
    db.execute("UPDATE events SET data = replace(data, 'T-1', 'T-2') WHERE kind = 'decided'", []).expect("edit");
    drop(db);
    let bad = phone.run(&["verify"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stdout(&bad).contains("do not match its hash"), "{}", stdout(&bad));
}

/// `tag` given a path relative to the officer's shell records the absolute path scan used;
/// the kept photo had a keyed record only, and is one item from the tag on.
#[test]
fn tagging_by_a_relative_path_records_the_absolute_one_on_the_same_item() {
    let phone = Phone::new();
    let p = phone.shoot("IMG_rel.jpg", 78);
    assert!(phone.run(&["scan"]).status.success());
    assert!(p.exists(), "kept: no session, no model");
    let cfg = phone.dir.path().join("cam.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n[classifier]\nenabled = false\n", phone.camera)).expect("cfg");
    let dcim = phone.camera.parent().expect("DCIM");
    let o = phone
        .command(&["--config", cfg.to_str().expect("utf8"), "tag", "Camera/IMG_rel.jpg", "--case", "K-7"], &[])
        .current_dir(dcim)
        .output()
        .expect("tag");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!p.exists());
    let list: serde_json::Value =
        serde_json::from_str(&stdout(&phone.run(&["list", "--all", "--json"]))).expect("list json");
    let items = list.as_array().expect("items");
    assert_eq!(items.len(), 1, "one item, from the tag on: {list}");
    let canonical = phone.camera.canonicalize().expect("camera").join("IMG_rel.jpg");
    assert_eq!(items[0]["original_path"], canonical.to_str().expect("utf8"), "{list}");
    assert_eq!(items[0]["case_id"], "K-7");
    // And so a release puts it back where it was shot, whatever the releasing shell's folder.
    let o = phone.run(&["release", &items[0]["id"].to_string(), "--reason", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.exists());
}

#[test]
fn officers_tag_and_release_with_an_audit_trail() {
    let phone = Phone::new();
    let p = phone.shoot("IMG_tag.jpg", 77);
    let sha = sha256(&p);
    // No session, no model: kept.
    assert!(phone.run(&["scan"]).status.success());
    assert!(p.exists());
    // Paths outside the camera folders and the store are refused.
    let outside = phone.dir.path().join("elsewhere.jpg");
    std::fs::write(&outside, b"x").expect("write");
    let o = phone.run(&["tag", outside.to_str().expect("utf8"), "--case", "K-5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not in a camera folder"), "{}", stderr(&o));
    // Tag by path: config must know the camera folder.
    let cfg = phone.dir.path().join("cam.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n[classifier]\nenabled = false\n", phone.camera)).expect("cfg");
    let cfgs = cfg.to_str().expect("utf8");
    let o = phone.run(&[
        "--config",
        cfgs,
        "tag",
        p.to_str().expect("utf8"),
        "--case",
        "K-5",
        "--officer",
        "anna",
        "--note",
        "plate",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!p.exists());
    let list = phone.run(&["list", "--case", "K-5", "--json"]);
    let items: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["source"], "manual");
    assert_eq!(items[0]["officer"], "anna");
    // The photo the agent had kept had a keyed record only (issue 29); tagged, it is case
    // material with a full record from that moment: one item, counted once, one story.
    let all = phone.run(&["list", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&all)).expect("json");
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    let id = items[0]["id"].as_i64().expect("id").to_string();
    let show = phone.run(&["show", &id, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&show)).expect("json");
    let kinds: Vec<&str> = v["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["intake", "decided", "tagged", "quarantined"], "{kinds:?}");
    let s: serde_json::Value = serde_json::from_str(&stdout(&phone.run(&["stats", "--format", "json"]))).expect("json");
    assert_eq!((s["items"]["seen"].as_u64(), s["items"]["kept"].as_u64()), (Some(1), Some(0)), "{s}");
    assert!(phone.run(&["verify"]).status.success());
    // Release needs a reason.
    let o = phone.run(&["release", &id]);
    assert_eq!(o.status.code(), Some(2), "missing --reason is a usage error");
    let o = phone.run(&["release", &id, "--reason", "not evidence after all", "--officer", "anna"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256(&p), sha, "released byte for byte to where it came from");
    let show = phone.run(&["show", &sha[..10], "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&show)).expect("json");
    let kinds: Vec<&str> = v["events"].as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.ends_with(&["release_requested", "released"]), "{kinds:?}");
    assert!(kinds.contains(&"tagged"), "{kinds:?}");
    // The released file is not quarantined again by the next pass.
    assert!(phone.run(&["scan"]).status.success());
    assert!(p.exists());
    assert!(phone.run(&["verify"]).status.success());
}

#[test]
fn on_media_is_idempotent_whoever_handles_a_file_first() {
    let phone = Phone::new();
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    let kept = phone.shoot("IMG_k.jpg", 1);
    let first = common::handle(&agent, &kept);
    assert_eq!(first.kind, OutcomeKind::Kept, "{first:?}");
    let again = common::handle(&agent, &kept);
    assert_eq!((again.kind, again.item), (OutcomeKind::Kept, first.item), "{again:?}");
    assert_eq!(again.detail.as_deref(), Some("already decided"), "{again:?}");
    agent.session_start("I-1", None, None).expect("session");
    let case = phone.shoot("IMG_q.jpg", 2);
    let first = common::handle(&agent, &case);
    assert_eq!(first.kind, OutcomeKind::Quarantined, "{first:?}");
    // The second handler finds the file gone and answers with the same item.
    let again = common::handle(&agent, &case);
    assert_eq!((again.kind, again.item, again.case_id.as_deref()), (OutcomeKind::Quarantined, first.item, Some("I-1")));
    // One item for the case photo; the kept one has a keyed record, not an item.
    assert_eq!(agent.ledger().items(None).expect("items").len(), 1, "no duplicate rows");
    assert_eq!(agent.ledger().personal_counts().expect("personal").kept, 1, "one keyed record");
}

#[test]
fn release_writes_only_where_the_chained_intake_event_says_the_photo_came_from() {
    let phone = Phone::new();
    session(&phone, "R-1");
    let p = phone.shoot("IMG_r.jpg", 61);
    assert!(phone.run(&["scan"]).status.success());
    assert!(!p.exists());
    // Someone edits the items row to make a release write into /etc.
    let db = rusqlite::Connection::open(phone.store.join("ledger.sqlite")).expect("db");
    db.execute("UPDATE items SET original_path = CAST('/etc/fotovakt-planted.jpg' AS BLOB)", []).expect("edit");
    let o = phone.run(&["release", "1", "--reason", "test"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not match its intake event"), "{}", stderr(&o));
    assert!(!Path::new("/etc/fotovakt-planted.jpg").exists());
    assert_eq!(phone.stored().len(), 1, "still in the store");
    // Restored, but the config's camera folders do not include where it came from: refused.
    db.execute("UPDATE items SET original_path = CAST(?1 AS BLOB)", [p.to_str().expect("utf8")]).expect("restore");
    drop(db);
    let other = phone.dir.path().join("other-camera");
    std::fs::create_dir_all(&other).expect("dir");
    let cfg = phone.dir.path().join("other.toml");
    std::fs::write(&cfg, format!("cameras = [{other:?}]\n[classifier]\nenabled = false\n")).expect("cfg");
    let o = phone.run(&["--config", cfg.to_str().expect("utf8"), "release", "1", "--reason", "test"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not in a configured camera folder"), "{}", stderr(&o));
    // With the right folder it goes back, byte for byte.
    let o = phone.run(&["release", "1", "--reason", "false positive"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(p.exists());
    assert!(phone.run(&["verify"]).status.success());
}

/// Found by the crash campaign: a release killed before its file moved was rolled back to
/// `quarantined` without its store file name, so `verify` failed, the item could not be
/// released again, and the next start adopted its own file as a second, orphan item.
#[test]
fn a_release_killed_before_the_move_is_rolled_back_with_its_store_file() {
    for store_parent in [None, Some(Path::new("/dev/shm")).filter(|p| p.is_dir())] {
        let phone = Phone::with_store_under(store_parent);
        session(&phone, "R-1");
        let p = phone.shoot("IMG_r.jpg", 31);
        let sha = sha256(&p);
        assert!(phone.run(&["scan"]).status.success());
        let stored = phone.stored();
        assert_eq!(stored.len(), 1);
        let killed = phone.run_env(&["release", "1", "--reason", "test"], &[("FOTOVAKT_FAULT", "after_journal")]);
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{}", stderr(&killed));
        // The read-only commands run no recovery: they show the release as it was left, a
        // move under way, and `verify` does not count its file as unaccounted.
        let v = phone.run(&["verify"]);
        assert!(v.status.success(), "verify after a killed release: {}", stdout(&v));
        let list = phone.run(&["list", "--all", "--json"]);
        let items: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
        assert_eq!(items[0]["state"], "releasing", "{items}");
        // The next writer recovers it.
        assert!(phone.run(&["scan"]).status.success());
        let v = phone.run(&["verify"]);
        assert!(v.status.success(), "verify after recovery: {}", stdout(&v));
        assert_eq!(phone.stored(), stored, "the store file stays, under its name");
        let list = phone.run(&["list", "--all", "--json"]);
        let items: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
        assert_eq!(items.as_array().map(Vec::len), Some(1), "no orphan adopted: {items}");
        assert_eq!(items[0]["state"], "quarantined");
        assert!(items[0]["store_name"].as_str().is_some_and(|n| n.contains(&sha)), "{items}");
        // And the officer can release it after all.
        let o = phone.run(&["release", "1", "--reason", "test"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(sha256(&p), sha);
        assert_invariant(&phone, &[]);
        assert!(phone.run(&["verify"]).status.success());
        if store_parent.is_some() {
            let _ = std::fs::remove_dir_all(&phone.store);
        }
    }
}
