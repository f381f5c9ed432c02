//! Bad input: every case gets a clear result, a log line and a ledger event where it is
//! input the agent saw; the agent keeps running and nothing is lost.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::{sha256, stderr, stdout, Phone};
use fotovakt::agent::{Agent, Error, OutcomeKind, Refusal};
use fotovakt::ledger::ItemState;
use fotovakt::sample::SamplePhoto;

fn agent_in_session(phone: &Phone) -> Agent {
    let mut config = phone.config();
    config.classifier.enabled = false;
    let agent = Agent::open(config).expect("agent");
    agent.session_start("BAD-1", None, None).expect("session");
    agent
}

/// Mount a small tmpfs (needs root); false where this machine does not allow it.
fn mount_tmpfs(dir: &Path, options: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

fn rejected_events(agent: &Agent) -> Vec<String> {
    let ledger = agent.ledger();
    let mut stmt = ledger.conn().prepare("SELECT data FROM events WHERE kind = 'rejected'").expect("prepare");
    stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").map(|r| r.expect("row")).collect()
}

#[test]
fn unusable_files_are_rejected_one_event_each_and_left_alone() {
    let phone = Phone::new();
    let agent = agent_in_session(&phone);
    let cam = &phone.camera;

    let empty = cam.join("IMG_empty.jpg");
    std::fs::write(&empty, b"").expect("write");
    let dir = cam.join("IMG_dir.jpg");
    std::fs::create_dir(&dir).expect("mkdir");
    let fifo = cam.join("IMG_fifo.jpg");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("cstr");
    // SAFETY: valid path string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let passwd = cam.join("IMG_passwd.jpg");
    std::os::unix::fs::symlink("/etc/passwd", &passwd).expect("symlink");
    let outside_target = phone.dir.path().join("outside.jpg");
    std::fs::write(&outside_target, SamplePhoto::default().jpeg()).expect("write");
    let outside = cam.join("IMG_outside.jpg");
    std::os::unix::fs::symlink(&outside_target, &outside).expect("symlink");
    let passwd_before = sha256(Path::new("/etc/passwd"));

    let cases: [(&PathBuf, &str); 5] = [
        (&empty, "empty file"),
        (&dir, "a directory"),
        (&fifo, "a FIFO"),
        (&passwd, "symbolic link"),
        (&outside, "symbolic link"),
    ];
    for (path, why) in cases {
        let o = common::handle(&agent, path);
        assert_eq!(o.kind, OutcomeKind::Rejected, "{}: {o:?}", path.display());
        assert!(o.detail.as_deref().unwrap_or("").contains(why), "{}: {o:?}", path.display());
        // Seen again (another event, a reconcile): no second event.
        assert_eq!(common::handle(&agent, path).kind, OutcomeKind::Rejected);
    }
    let events = rejected_events(&agent);
    assert_eq!(events.len(), 5, "one ledger event per bad file: {events:?}");
    assert!(
        empty.exists() && dir.is_dir() && fifo.exists() && passwd.symlink_metadata().is_ok() && outside_target.exists()
    );
    assert_eq!(sha256(Path::new("/etc/passwd")), passwd_before);
    assert!(phone.stored().is_empty(), "nothing followed into the store");
    // And the agent still works.
    let good = phone.shoot("IMG_good.jpg", 5);
    assert_eq!(common::handle(&agent, &good).kind, OutcomeKind::Quarantined);
    // A restarted agent (a later scan) sees the same bad files: still one event each.
    drop(agent);
    let again = agent_in_session(&phone);
    for (path, _) in cases {
        assert_eq!(common::handle(&again, path).kind, OutcomeKind::Rejected);
    }
    assert_eq!(rejected_events(&again).len(), 5, "one event per bad file across restarts");
}

#[test]
fn corrupt_truncated_and_mislabelled_images_are_still_protected() {
    let phone = Phone::new();
    let agent = agent_in_session(&phone);
    let full = SamplePhoto { seed: 3, ..Default::default() }.jpeg();
    let mut names = Vec::new();
    for pct in [10, 50, 90] {
        let name = format!("IMG_trunc{pct}.jpg");
        std::fs::write(phone.camera.join(&name), &full[..full.len() * pct / 100]).expect("write");
        names.push(name);
    }
    let png = {
        let mut v = Vec::new();
        image::DynamicImage::new_rgb8(16, 16)
            .write_to(&mut std::io::Cursor::new(&mut v), image::ImageFormat::Png)
            .expect("png");
        v
    };
    std::fs::write(phone.camera.join("IMG_png.jpg"), &png).expect("write");
    names.push("IMG_png.jpg".into());
    std::fs::write(phone.camera.join("IMG_text.jpg"), b"this is not a photo\n").expect("write");
    names.push("IMG_text.jpg".into());
    for name in &names {
        let o = common::handle(&agent, &phone.camera.join(name));
        // Shot during a session: case material whatever its bytes. Evidence is kept as-is.
        assert_eq!(o.kind, OutcomeKind::Quarantined, "{name}: {o:?}");
    }
    let items = agent.ledger().items(None).expect("items");
    let kind_of = |n: &str| items.iter().find(|i| i.original_path.ends_with(n)).map(|i| i.kind.clone());
    assert_eq!(kind_of("IMG_png.jpg").as_deref(), Some("png"), "sniffed, not trusted from the extension");
    assert_eq!(kind_of("IMG_text.jpg").as_deref(), Some("unknown"));
    assert!(agent.verify().expect("verify").problems.is_empty());
}

#[test]
fn odd_file_names_newlines_and_invalid_utf8() {
    let phone = Phone::new();
    let agent = agent_in_session(&phone);
    let bytes = SamplePhoto { seed: 11, ..Default::default() }.jpeg();
    let newline = phone.camera.join("IMG_line\nbreak.jpg");
    std::fs::write(&newline, &bytes).expect("write");
    let mut raw = b"IMG_\xff\xfe_latin1_".to_vec();
    raw.extend_from_slice(b".jpg");
    let invalid = phone.camera.join(OsStr::from_bytes(&raw));
    std::fs::write(&invalid, SamplePhoto { seed: 12, ..Default::default() }.jpeg()).expect("write");
    for p in [&newline, &invalid] {
        let o = common::handle(&agent, p);
        assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    }
    let items = agent.ledger().items(None).expect("items");
    assert!(items.iter().any(|i| i.original_path == invalid), "raw bytes of the name are kept");
    // Released back under the exact same (non-UTF-8) name.
    let id = items.iter().find(|i| i.original_path == invalid).map(|i| i.id).expect("item");
    agent.release(&id.to_string(), "test", None).expect("release");
    assert!(invalid.exists());
}

#[test]
fn a_full_disk_leaves_the_original_in_place_and_the_agent_running() {
    let phone = Phone::new();
    let mnt = phone.dir.path().join("tiny");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    if !mount_tmpfs(&mnt, "size=1m,mode=0700") {
        common::skip("cannot mount a small tmpfs here (needs root); full-disk case not exercised");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let mut config = phone.config();
        config.store = Some(mnt.join("store"));
        config.classifier.enabled = false;
        let agent = Agent::open(config).expect("agent");
        agent.session_start("DISK", None, None).expect("session");
        // Several MB: does not fit in 1 MB (the ledger's WAL takes some of it too).
        let big = SamplePhoto { width: 3000, height: 2000, seed: 1, quality: 100, ..Default::default() }.jpeg();
        assert!(big.len() > 1 << 20, "test photo must be larger than the disk: {}", big.len());
        let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_big.jpg", &big).expect("write");
        let sha = sha256(&p);
        let o = common::handle(&agent, &p);
        assert_eq!(o.kind, OutcomeKind::Retry, "{o:?}");
        assert!(o.detail.as_deref().unwrap_or("").contains("No space"), "{o:?}");
        // The original is untouched, out of sight while it waits for the store: in staging, under
        // the name its open stash row gives (issue 25 beside issue 23).
        let staged = phone.staged();
        assert_eq!(staged.len(), 1, "{staged:?}");
        assert_eq!(sha256(&staged[0]), sha, "the original is untouched");
        let rows = agent.ledger().pending_moves().expect("moves");
        assert!(rows.iter().any(|m| m.src == p && m.dst == staged[0]), "{rows:?}");
        assert!(std::fs::read_dir(mnt.join("store/tmp")).expect("tmp").next().is_none(), "partial copy removed");
        // The agent goes on: a small photo still fits.
        let tiny = SamplePhoto { width: 32, height: 24, seed: 2, ..Default::default() }.jpeg();
        let small = fotovakt::sample::write_like_android(&phone.camera, "IMG_small.jpg", &tiny).expect("write");
        let o = common::handle(&agent, &small);
        assert_eq!(
            o.kind,
            OutcomeKind::Quarantined,
            "{o:?} (store holds {:?})",
            std::fs::read_dir(mnt.join("store")).map(|d| d
                .flatten()
                .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                .collect::<Vec<_>>())
        );
    });
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn a_read_only_store_is_refused_with_a_clear_error() {
    let phone = Phone::new();
    let mnt = phone.dir.path().join("ro");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    if !mount_tmpfs(&mnt, "ro,size=64k,mode=0700") {
        common::skip("cannot mount a read-only tmpfs here (needs root)");
        return;
    }
    // `session` creates a store where `stats` would only report that there is none.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(mnt.join("store"))
        .args(["session", "status"])
        .output()
        .expect("run");
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("read-only") && err.contains("/ro/store"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn files_over_the_size_limit_are_rejected() {
    let phone = Phone::new();
    let mut config = phone.config();
    config.classifier.enabled = false;
    config.max_file_bytes = 1000;
    let agent = Agent::open(config).expect("agent");
    let p = phone.shoot("IMG_huge.jpg", 1);
    let o = common::handle(&agent, &p);
    assert_eq!(o.kind, OutcomeKind::Rejected);
    assert!(o.detail.as_deref().unwrap_or("").contains("max_file_bytes"), "{o:?}");
    assert!(p.exists());
}

#[test]
fn bad_config_and_bad_arguments_exit_2_with_one_line() {
    let phone = Phone::new();
    let cfg = phone.dir.path().join("bad.toml");
    std::fs::write(&cfg, "[policy]\nthreshold = 7\n").expect("write");
    let o = phone.run(&["--config", cfg.to_str().expect("utf8"), "stats"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bad.toml") && stderr(&o).contains("policy.threshold"), "{}", stderr(&o));
    let o = phone.run(&["--config", "/nonexistent/fotovakt.toml", "stats"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/fotovakt.toml"), "{}", stderr(&o));
    for args in [
        vec!["frobnicate"],
        vec!["session", "start"],
        vec!["session", "start", "--case", "K", "--for", "soon"],
        vec!["stats", "--format", "xml"],
        vec!["classify"],
    ] {
        let o = phone.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
    let o = phone.run(&["scan"]);
    assert!(o.status.success(), "empty camera folder is fine: {}", stderr(&o));
    assert!(stdout(&o).contains("nothing new"), "{}", stdout(&o));
    let o = phone.run(&["release", "999", "--reason", "x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no item matches"), "{}", stderr(&o));
}

/// Start `scan` paused at `point` (FOTOVAKT_PAUSE), wait until it says it paused, run
/// `meddle`, and let it finish.
fn scan_meddling_at(phone: &Phone, point: &str, meddle: impl FnOnce()) -> std::process::Output {
    phone.scan_paused(point, 1500, meddle)
}

#[test]
fn a_file_deleted_or_replaced_between_decision_and_move_is_never_lost() {
    // Three windows: with the stash, after the stash is journaled, right before the rename
    // into staging; judging in place (`stash = false`), after the hash and decision, before
    // the move lock, and after the move is journaled, right before the rename. In each, the
    // officer's gallery app deletes the file, replaces it with another photo, or swaps in a
    // symlink to /etc/passwd.
    let passwd_before = sha256(Path::new("/etc/passwd"));
    for (point, stash) in [("after_stash_journal", true), ("before_lock", false), ("after_journal", false)] {
        for meddling in ["deleted", "replaced", "symlinked"] {
            let phone = Phone::new();
            let cfg = format!("stash = {stash}\n[classifier]\nenabled = false\n");
            std::fs::write(phone.dir.path().join("test-config.toml"), cfg).expect("config");
            assert!(phone.run(&["session", "start", "--case", "RACE-1"]).status.success());
            let p = phone.shoot("IMG_race.jpg", 31);
            let original = sha256(&p);
            let other = SamplePhoto { seed: 32, ..Default::default() }.jpeg();
            let other_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&other));
            scan_meddling_at(&phone, point, || match meddling {
                "deleted" => std::fs::remove_file(&p).expect("delete"),
                "replaced" => {
                    let tmp = phone.camera.join(".pending-race.jpg");
                    std::fs::write(&tmp, &other).expect("write");
                    std::fs::rename(&tmp, &p).expect("rename over");
                }
                _ => {
                    std::fs::remove_file(&p).expect("delete");
                    std::os::unix::fs::symlink("/etc/passwd", &p).expect("symlink");
                }
            });
            let ctx = format!("{meddling} at {point}");
            assert!(phone.staged().is_empty(), "{ctx}: nothing left in staging: {:?}", phone.staged());
            // The agent must not have stored what it did not hash, nor followed the link.
            let stored: Vec<String> = phone.stored().iter().map(|s| sha256(s)).collect();
            assert!(stored.iter().all(|s| *s == original || *s == other_sha), "{ctx}: stored {stored:?}");
            assert_eq!(sha256(Path::new("/etc/passwd")), passwd_before, "{ctx}");
            // A second pass settles whatever is there now; the ledger verifies.
            let again = phone.run(&["scan"]);
            assert!(again.status.success(), "{ctx}: {}", stderr(&again));
            let stored: Vec<String> = phone.stored().iter().map(|s| sha256(s)).collect();
            match meddling {
                // The photo the agent hashed was taken away by someone else before it moved:
                // nothing of ours is stored, and the ledger says the move did not happen.
                "deleted" => assert!(stored.is_empty(), "{ctx}: {stored:?}"),
                // The new photo was shot during the session too: quarantined exactly once.
                "replaced" => {
                    assert_eq!(stored, vec![other_sha.clone()], "{ctx}");
                    assert!(!p.exists(), "{ctx}: never both");
                }
                _ => {
                    assert!(stored.is_empty(), "{ctx}: {stored:?}");
                    assert!(p.symlink_metadata().expect("link").file_type().is_symlink(), "{ctx}: link left alone");
                }
            }
            let v = phone.run(&["verify"]);
            assert!(v.status.success(), "{ctx}: {}", stdout(&v));
            let list = phone.run(&["list", "--all", "--json"]);
            let items: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
            let states: Vec<&str> =
                items.as_array().expect("array").iter().filter_map(|i| i["state"].as_str()).collect();
            assert!(!states.contains(&"moving"), "{ctx}: {states:?}");
            eprintln!("{ctx}: states {states:?}, stored {}", stored.len());
        }
    }
}

#[test]
fn a_real_jpeg_truncated_at_every_tenth_gets_a_clear_result_from_intake_and_classifier() {
    // The committed fixture is a real JPEG (CMYK, Adobe APP14); plus a synthesized one with
    // EXIF and a thumbnail. Each prefix goes through the whole intake: hash, sniff, EXIF, the
    // classifier (no context rule applies, so the model is asked when ONNX Runtime is here),
    // then the policy; and straight through the classifier as well.
    let fixture =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cmyk_red.jpg")).expect("fixture");
    let synthesized = SamplePhoto { seed: 5, ..Default::default() }.jpeg();
    let phone = Phone::new();
    let agent = Agent::open(phone.config()).expect("agent");
    let classifier = agent.model_status().is_ok();
    let mut sources = std::collections::BTreeMap::<String, usize>::new();
    for (label, full) in [("fixture", &fixture), ("synthesized", &synthesized)] {
        for tenth in 0..=10 {
            let bytes = &full[..full.len() * tenth / 10];
            let name = format!("IMG_{label}_{tenth}.jpg");
            let path = phone.camera.join(&name);
            std::fs::write(&path, bytes).expect("write");
            if classifier && tenth > 0 {
                match agent.classify_keyframe(bytes) {
                    Ok(Some(a)) => assert!((0.0..=1.0).contains(&a.case_score), "{name}: {}", a.case_score),
                    Ok(None) => panic!("{name}: classifier is loaded"),
                    Err(e) => assert!(matches!(e, Error::Keyframe { .. }), "{name}: {e:?}"),
                }
            }
            let o = common::handle(&agent, &path);
            if tenth == 0 {
                assert_eq!(o.kind, OutcomeKind::Rejected, "{name}: {o:?}");
                continue;
            }
            assert!(matches!(o.kind, OutcomeKind::Kept | OutcomeKind::Quarantined), "{name}: {o:?}");
            assert!(o.rule.as_deref().is_some_and(|r| !r.is_empty()), "{name}: a decision says why: {o:?}");
            let source = o.source.map(|s| s.as_str().to_string()).unwrap_or_default();
            if classifier && tenth == 10 {
                assert_eq!(source, "classifier", "{name}: a whole photo is judged by the model: {o:?}");
            }
            *sources.entry(source).or_default() += 1;
        }
    }
    eprintln!("classifier loaded: {classifier}; decisions by source: {sources:?}");
    assert!(agent.verify().expect("verify").problems.is_empty());
}

/// Officer requests the agent declines come back as typed refusals (what the CLI prints and
/// the JNI bridge maps to exceptions), with nothing changed.
#[test]
fn bad_officer_requests_are_typed_refusals() {
    let phone = Phone::new();
    let agent = agent_in_session(&phone);
    let refusal = |r: Result<_, Error>| match r {
        Err(Error::Refused(r)) => r,
        Err(e) => panic!("expected a refusal, got {e:?}"),
        Ok(_) => panic!("expected a refusal, got success"),
    };
    assert_eq!(refusal(agent.session_start("  ", None, None).map(|_| ())), Refusal::CaseIdRequired);
    let outside = phone.dir.path().join("elsewhere.jpg");
    std::fs::write(&outside, b"not a photo of the camera").expect("write");
    match refusal(agent.tag(outside.to_str().expect("utf8"), "C-1", None, None).map(|_| ())) {
        Refusal::OutsideCameras { path } => assert!(path.ends_with("elsewhere.jpg"), "{path:?}"),
        other => panic!("{other:?}"),
    }
    let o = common::handle(&agent, &phone.shoot("IMG_0001.jpg", 1));
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    let item = o.item.expect("item").to_string();
    assert_eq!(refusal(agent.release(&item, " ", None).map(|_| ())), Refusal::ReasonRequired);
    agent.release(&item, "not evidence", None).expect("release");
    assert_eq!(
        refusal(agent.release(&item, "again", None).map(|_| ())),
        Refusal::NotQuarantined { item: o.item.expect("item"), state: ItemState::Released }
    );
    assert_eq!(
        refusal(agent.export("NO-SUCH", &phone.dir.path().join("pkg"), None).map(|_| ())),
        Refusal::UnknownCase { case: "NO-SUCH".into() }
    );
    assert_eq!(
        refusal(agent.export("BAD-1", &phone.dir.path().join("pkg"), None).map(|_| ())),
        Refusal::NothingInStore { case: "BAD-1".into(), items: 1 }
    );
    match refusal(agent.export("BAD-1", &phone.camera.join("pkg"), None).map(|_| ())) {
        Refusal::OutputInSyncedPlace { output, .. } => assert_eq!(output, fotovakt::agent::Output::Package),
        other => panic!("{other:?}"),
    }
    assert_eq!(refusal(agent.ack("BAD-1", None).map(|_| ())), Refusal::NotExported { case: "BAD-1".into() });
}
