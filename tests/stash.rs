//! Out of sight first (issue 25, items 1–2): a new camera file is renamed into the staging
//! folder before it is hashed and judged; case material goes from there into the store, a
//! photo judged personal goes back to its name and leaves no item and no event naming it
//! (issue 29: a keyed record only). Real binary or library, real SQLite, real JPEGs; the
//! phone-like FUSE filesystem where the phone has one.

mod common;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::{sha256, stderr, stdout, Phone};
use fotovakt::agent::{Agent, OutcomeKind};
use fotovakt::sample::SamplePhoto;

/// The work site of these tests: a photo shot inside it is quarantined, any other kept, so
/// both endings happen without a classifier (and, with a work site that quarantines, every
/// photo could be case material: every one is stashed).
const SITE: (f64, f64) = (69.6617, 30.1271);

fn site_config(phone: &Phone) -> fotovakt::Config {
    let mut c = phone.config();
    c.classifier.enabled = false;
    c.work_sites =
        vec![fotovakt::config::WorkSite { name: "Storskog".into(), lat: SITE.0, lon: SITE.1, radius_m: 500.0 }];
    c
}

fn write_site_config(phone: &Phone, extra: &str) {
    let text = format!(
        "{extra}\n[classifier]\nenabled = false\n\n[[work_sites]]\nname = \"Storskog\"\nlat = {}\nlon = {}\nradius_m = 500\n",
        SITE.0, SITE.1
    );
    std::fs::write(phone.dir.path().join("test-config.toml"), text).expect("config");
}

fn photo(seed: u64, at_site: bool) -> Vec<u8> {
    SamplePhoto { seed, gps: at_site.then_some(SITE), ..SamplePhoto::default() }.jpeg()
}

/// The kinds of the custody events of `item`, in order.
fn kinds(agent: &Agent, item: i64) -> Vec<String> {
    agent.ledger().events_of(item).expect("events").into_iter().map(|e| e.kind.to_string()).collect()
}

#[test]
fn a_personal_photo_goes_out_of_sight_and_back_to_its_name_untouched() {
    let phone = Phone::new();
    let agent = Agent::open(site_config(&phone)).expect("agent");
    let bytes = photo(1, false);
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_keep.jpg", &bytes).expect("write");
    let before = std::fs::metadata(&p).expect("meta");
    let o = agent.on_media(&p);
    assert_eq!(o.kind, OutcomeKind::Kept, "{o:?}");
    assert_eq!(o.returned_to.as_deref(), Some(p.to_str().expect("utf-8")), "{o:?}");
    // The same file (a rename there and back): inode, size, mtime and bytes unchanged.
    let after = std::fs::metadata(&p).expect("back at its name");
    assert_eq!((after.ino(), after.size(), after.mtime_nsec()), (before.ino(), before.size(), before.mtime_nsec()));
    assert_eq!(std::fs::read(&p).expect("read"), bytes);
    assert!(phone.staged().is_empty(), "{:?}", phone.staged());
    assert!(phone.staging().join(".nomedia").is_file(), "the staging folder hides itself from MediaStore");
    // The officer's own photo: a keyed record only. Its stash and return are in no event, and
    // the journal row that named it while it was staged is closed.
    assert_eq!(o.item, None, "{o:?}");
    assert!(agent.ledger().items(None).expect("items").is_empty());
    assert_eq!(names_in_events(&phone, "IMG_keep"), 0);
    let meta = std::fs::metadata(&p).expect("meta");
    let record = agent.ledger().personal(&p, meta.size(), fotovakt::quarantine::fsops::FileId::of(&meta).mtime_ns);
    assert!(record.expect("personal").is_some(), "a keyed record of the file version");
    assert!(agent.ledger().pending_moves().expect("moves").is_empty());
    // The return raised an event in the camera folder: handling it again changes nothing.
    let again = agent.on_media(&p);
    assert_eq!((again.kind, again.item), (OutcomeKind::Kept, None), "{again:?}");
    assert!(again.returned_to.is_none(), "settled, not stashed again: {again:?}");
    assert!(agent.pending_files(std::time::Duration::ZERO).expect("reconcile").is_empty());
    assert!(agent.verify().expect("verify").problems.is_empty());
}

/// How many custody events name `needle` (a file name) in their data.
fn names_in_events(phone: &Phone, needle: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        phone.store.join("ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("ledger");
    db.query_row("SELECT count(*) FROM events WHERE instr(data, ?1) > 0", [needle], |r| r.get(0)).expect("count")
}

#[test]
fn case_material_goes_from_staging_into_the_store() {
    let phone = Phone::new();
    let agent = Agent::open(site_config(&phone)).expect("agent");
    let bytes = photo(2, true);
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_case.jpg", &bytes).expect("write");
    let o = agent.on_media(&p);
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    assert!(o.returned_to.is_none());
    assert!(!p.exists());
    assert!(phone.staged().is_empty(), "{:?}", phone.staged());
    let stored = phone.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(sha256(&stored[0]), sha256_of(&bytes));
    let item = o.item.expect("item");
    assert_eq!(kinds(&agent, item), ["intake", "stashed", "decided", "quarantined"]);
    // The stashed event names the staging folder, outside the synced DCIM tree.
    let events = agent.ledger().events_of(item).expect("events");
    let staged_at = match &events[1].event {
        fotovakt::ledger::Event::Stashed { staging, .. } => PathBuf::from(staging),
        other => panic!("{other:?}"),
    };
    assert!(staged_at.starts_with(phone.dir.path().canonicalize().expect("canon").join("phone/.fotovakt-staging")));
    assert!(agent.verify().expect("verify").problems.is_empty());
}

fn sha256_of(b: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b))
}

#[test]
fn what_only_keep_can_come_out_for_is_judged_where_it_lies() {
    // No classifier, no work site, no duty hours, no session: nothing can quarantine it, so it
    // is not moved at all (no churn for galleries and uploaders).
    let phone = Phone::new();
    let mut c = phone.config();
    c.classifier.enabled = false;
    let agent = Agent::open(c).expect("agent");
    let p = phone.shoot("IMG_plain.jpg", 3);
    let o = agent.on_media(&p);
    assert_eq!(o.kind, OutcomeKind::Kept, "{o:?}");
    assert!(o.returned_to.is_none());
    assert_eq!(o.item, None, "the officer's own photo: a keyed record only");
    assert!(p.exists());
    // A session changes that: the next photo is stashed (and quarantined from staging).
    agent.session_start("C-1", None, None).expect("session");
    let q = phone.shoot("IMG_sess.jpg", 4);
    let o = agent.on_media(&q);
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    assert_eq!(kinds(&agent, o.item.expect("item")), ["intake", "stashed", "decided", "quarantined"]);
    // Held (no media-location access) and officers' tags never stash: a photo shot at the site
    // is held as an item where it lies.
    drop(agent);
    let mut c = site_config(&phone);
    c.media_location_access = false;
    let held = Agent::open(c).expect("agent");
    let r = fotovakt::sample::write_like_android(&phone.camera, "IMG_held.jpg", &photo(5, true)).expect("write");
    let o = held.on_media(&r);
    assert_eq!(kinds(&held, o.item.expect("item")), ["intake", "decided", "held"]);
    assert!(r.exists());
}

/// Start `scan` paused at `point`, run `meddle` while it waits there, let it finish.
fn scan_paused_at(phone: &Phone, point: &str, meddle: impl FnOnce()) -> std::process::Output {
    phone.scan_paused(point, 1500, meddle)
}

fn items(phone: &Phone) -> Vec<serde_json::Value> {
    let out = phone.run(&["list", "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json").as_array().expect("array").clone()
}

/// Two handlers, one photo: the MediaStore observer's `on_media` comes while another process
/// of ours (here `scan`, paused after its stash) has the photo in staging. It answers that
/// handler's decision, as before the stash it did: quarantined for the one shot at the work
/// site, kept (the officer's own) for the other. It neither says "no longer there" nor
/// decides the photo a second time.
#[test]
fn on_media_answers_the_decision_of_the_handler_that_has_the_photo_in_staging() {
    let phone = Phone::new();
    write_site_config(&phone, "");
    let agent = Agent::open(site_config(&phone)).expect("agent");
    for (name, at_site, want) in
        [("IMG_site.jpg", true, OutcomeKind::Quarantined), ("IMG_home.jpg", false, OutcomeKind::Kept)]
    {
        let p = fotovakt::sample::write_like_android(&phone.camera, name, &photo(20 + at_site as u64, at_site))
            .expect("write");
        let o = std::thread::scope(|s| {
            let mut observer = None;
            scan_paused_at(&phone, "after_stash", || {
                assert!(!p.exists(), "{name}: in staging while scan pauses");
                observer = Some(s.spawn(|| agent.on_media(&p)));
            });
            observer.expect("spawned").join().expect("on_media")
        });
        assert_eq!(o.kind, want, "{name}: {o:?}");
        assert_eq!(p.exists(), want == OutcomeKind::Kept, "{name}");
    }
    let all = items(&phone);
    assert_eq!(all.len(), 1, "one item, the work-site photo, decided once: {all:?}");
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn a_name_taken_while_the_photo_was_staged_gets_the_documented_fallback() {
    let phone = Phone::new();
    write_site_config(&phone, "");
    let first = photo(10, false);
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_0001.jpg", &first).expect("write");
    let second = photo(11, false);
    // While the first photo waits to go back, the camera writes another under its name.
    scan_paused_at(&phone, "before_return", || {
        fotovakt::sample::write_like_android(&phone.camera, "IMG_0001.jpg", &second).expect("write over the name");
    });
    // The officer's own photos: no items, no event naming either name.
    assert!(items(&phone).is_empty());
    let back: Vec<PathBuf> = std::fs::read_dir(&phone.camera)
        .expect("camera")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().expect("name").to_string_lossy().starts_with("IMG_0001-returned-"))
        .collect();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(std::fs::read(&back[0]).expect("the first photo, under the fallback name"), first);
    assert_eq!(std::fs::read(&p).expect("the second photo keeps the name"), second);
    assert!(phone.staged().is_empty());
    // The keyed record is of the fallback name, so it is settled; the newcomer is decided on
    // the next pass, once.
    let out = phone.run(&["scan"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(items(&phone).is_empty());
    assert_eq!(names_in_events(&phone, "IMG_0001"), 0);
    let again = phone.run(&["scan"]);
    assert!(stdout(&again).contains("nothing new"), "{}", stdout(&again));
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn a_photo_killed_in_staging_is_returned_by_recovery_and_judged_once() {
    for (point, at_site) in [("after_stash", false), ("after_stash", true), ("before_return", false)] {
        let phone = Phone::new();
        write_site_config(&phone, "");
        let bytes = photo(20, at_site);
        let sha = sha256_of(&bytes);
        let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_kill.jpg", &bytes).expect("write");
        let killed = phone.run_env(&["scan"], &[("FOTOVAKT_FAULT", point)]);
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{point}: {}", stderr(&killed));
        let staged = phone.staged();
        assert_eq!(staged.len(), 1, "{point}: in staging under the name its journal row gives: {staged:?}");
        assert_eq!(sha256(&staged[0]), sha);
        assert!(!p.exists(), "{point}: out of sight");
        // A stray file in staging is nobody's photo: left alone, never taken for a camera file.
        let stray = phone.staging().join("stray.jpg");
        std::fs::write(&stray, photo(21, true)).expect("stray");
        let out = phone.run(&["scan"]);
        assert!(out.status.success(), "{point}: {}", stderr(&out));
        assert_eq!(phone.staged(), vec![stray.clone()], "{point}: only the stray file is left in staging");
        // Judged once: case material is one item; the officer's own photo none.
        let items = items(&phone);
        assert_eq!(items.len(), usize::from(at_site), "{point}: judged once: {items:?}");
        if at_site {
            assert_eq!(items[0]["state"], "quarantined", "{point}: {items:?}");
        }
        assert_eq!(p.exists(), !at_site, "{point}");
        // The file was not recorded when it was killed (a personal photo never is): recovery's
        // return is in no event, so nothing names the officer's own photo.
        let db = rusqlite::Connection::open(phone.store.join("ledger.sqlite")).expect("ledger");
        let returned: i64 =
            db.query_row("SELECT count(*) FROM events WHERE kind = 'returned'", [], |r| r.get(0)).expect("events");
        assert_eq!(returned, 0, "{point}");
        if !at_site {
            assert_eq!(names_in_events(&phone, "IMG_kill"), 0, "{point}");
        }
        let v = phone.run(&["verify"]);
        assert!(v.status.success(), "{point}: {}", stdout(&v));
        std::fs::remove_file(&stray).expect("stray");
    }
}

#[test]
fn a_staging_folder_inside_a_camera_synced_or_media_folder_is_refused_at_start() {
    let phone = Phone::new();
    for bad in [phone.camera.join(".stage"), phone.dir.path().join("phone/DCIM/.stage")] {
        write_site_config(&phone, &format!("staging = {:?}", bad));
        let out = phone.run(&["scan"]);
        assert!(!out.status.success(), "{bad:?} accepted");
        assert!(stderr(&out).contains("refusing staging folder"), "{}", stderr(&out));
    }
}

/// On the MediaProvider-like FUSE filesystem: rename flags are refused, so the stash renames
/// into its own folder once the name there is checked free (under the move lock) and the
/// return claims its name `O_EXCL` and renames over the claim; the staging folder is at the
/// volume's root (`DCIM` is a media folder), as `/storage/emulated/0/.fotovakt-staging`.
#[test]
fn on_mediaprovider_like_storage_the_stash_is_a_rename_at_the_volume_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(fs) = mediafs::MediaFs::mount_or_skip(dir.path(), "the stash") else { return };
    let camera = fs.mountpoint.join("DCIM/Camera");
    std::fs::create_dir_all(&camera).expect("camera");
    let phone = Phone::new();
    let mut c = site_config(&phone);
    c.cameras = vec![camera.clone()];
    c.store = Some(dir.path().join("private/store"));
    let agent = Agent::open(c).expect("agent");
    let keep = fotovakt::sample::write_like_android(&camera, "IMG_k.jpg", &photo(30, false)).expect("write");
    let ino = std::fs::metadata(&keep).expect("meta").ino();
    let o = agent.on_media(&keep);
    assert_eq!(o.kind, OutcomeKind::Kept, "{o:?}");
    assert_eq!(std::fs::metadata(&keep).expect("back").ino(), ino, "the same file came back");
    let case = fotovakt::sample::write_like_android(&camera, "IMG_q.jpg", &photo(31, true)).expect("write");
    let o = agent.on_media(&case);
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    let staging = fs.mountpoint.join(".fotovakt-staging");
    assert!(staging.join(".nomedia").is_file(), "staging at the volume root, hidden");
    assert!(common::staged_in(&staging).is_empty());
    let events = kinds(&agent, o.item.expect("item"));
    assert_eq!(events, ["intake", "stashed", "decided", "quarantined"]);
    assert!(agent.verify().expect("verify").problems.is_empty());
    drop(agent);
    drop(fs);
    let _: &Path = dir.path();
}

/// Issue 25's "a second process of ours beside the first": while a live `scan` judges a photo
/// it has stashed, an officer's `session start` and `tag` (each opens the store as a writer and
/// recovers) leave the staged file to it; the scan quarantines it, and the tag lands on its
/// item. Killed instead, the owner's life lock goes with it, and the next officer command
/// returns the photo to its name.
#[test]
fn a_live_agents_staged_file_is_left_to_it_and_a_dead_ones_returned() {
    let phone = Phone::new();
    write_site_config(&phone, "");
    let bytes = photo(40, true);
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_live.jpg", &bytes).expect("write");
    let target = p.to_str().expect("utf-8").to_string();
    phone.scan_paused("before_lock", 8000, || {
        let staged = phone.staged();
        assert_eq!(staged.len(), 1, "{staged:?}");
        let s = phone.run(&["session", "start", "--case", "LIVE-1"]);
        assert!(s.status.success(), "{}", stderr(&s));
        assert_eq!(phone.staged(), staged, "the live scan's staged file stays in staging");
        assert!(!p.exists(), "and out of sight");
        // The tag waits for the scan's decision and lands on its item.
        let t = phone.run(&["tag", &target, "--case", "TAG-9"]);
        assert!(t.status.success(), "{}{}", stdout(&t), stderr(&t));
        assert!(stdout(&t).contains("tagged as case TAG-9"), "{}", stdout(&t));
    });
    let it = items(&phone);
    assert_eq!(it.len(), 1, "{it:?}");
    assert_eq!((&it[0]["state"], &it[0]["case_id"]), (&"quarantined".into(), &"TAG-9".into()), "{it:?}");
    assert!(phone.staged().is_empty() && !p.exists());
    // Killed with the photo in staging: dead, so the next officer command returns it.
    let q = fotovakt::sample::write_like_android(&phone.camera, "IMG_dead.jpg", &photo(41, false)).expect("write");
    let killed = phone.run_env(&["scan"], &[("FOTOVAKT_FAULT", "after_stash")]);
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{}", stderr(&killed));
    assert_eq!(phone.staged().len(), 1);
    let live = phone.store.join("live");
    assert_eq!(std::fs::read_dir(&live).expect("live").count(), 1, "the killed scan's lock file is left");
    let s = phone.run(&["session", "stop"]);
    assert!(s.status.success(), "{}", stderr(&s));
    assert!(phone.staged().is_empty(), "returned by the officer command's recovery");
    assert!(q.exists());
    assert_eq!(std::fs::read_dir(&live).expect("live").count(), 0, "dead and own lock files gone");
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

/// A long-running agent (a `watch`) returns what an agent that died after it started left in
/// staging at its next reconcile pass, and judges it then; its own staged files stay its own.
#[test]
fn a_running_agent_returns_a_dead_agents_staged_file_at_its_next_pass() {
    let phone = Phone::new();
    write_site_config(&phone, "");
    let watcher = Agent::open(site_config(&phone)).expect("agent");
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_gone.jpg", &photo(50, true)).expect("write");
    let killed = phone.run_env(&["scan"], &[("FOTOVAKT_FAULT", "after_stash")]);
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{}", stderr(&killed));
    assert_eq!(phone.staged().len(), 1);
    assert_eq!(watcher.pending_files(std::time::Duration::ZERO).expect("pass"), vec![p.clone()]);
    assert!(phone.staged().is_empty() && p.exists(), "back at its name for this pass");
    let o = watcher.on_media(&p);
    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
    assert!(watcher.verify().expect("verify").problems.is_empty());
}

/// `tag PATH` of a photo a live agent keeps judging (hung, here paused) for longer than the tag
/// waits: a clear error, and the photo is left to that agent, which quarantines it.
#[test]
fn a_tag_of_a_photo_a_live_agent_keeps_judging_says_so_and_leaves_it() {
    let phone = Phone::new();
    write_site_config(&phone, "");
    let p = fotovakt::sample::write_like_android(&phone.camera, "IMG_slow.jpg", &photo(60, true)).expect("write");
    let target = p.to_str().expect("utf-8").to_string();
    phone.scan_paused("before_lock", 14000, || {
        let t = phone.run(&["tag", &target, "--case", "TAG-SLOW"]);
        assert!(!t.status.success(), "{}", stdout(&t));
        assert!(stderr(&t).contains("still judging it"), "{}", stderr(&t));
        assert_eq!(phone.staged().len(), 1, "left in staging to its agent");
    });
    let it = items(&phone);
    assert_eq!((it.len(), &it[0]["state"]), (1, &"quarantined".into()), "{it:?}");
    assert!(phone.staged().is_empty() && !p.exists());
}

/// An officer's tag is a decision that a power cut or a kill in the middle of its move does not
/// undo: recovery rolls the copy back and the photo is at its name again, and the next pass
/// finishes the tag's move into the tagged case, although no rule would quarantine the photo
/// now (no classifier, no session, no work site: left to itself it is the officer's own).
/// (Killed before its decision was committed, a tag did not happen: the command failed.)
#[test]
fn a_tag_whose_move_was_killed_stands_on_the_next_pass() {
    let phone = Phone::new();
    // `tag` takes the camera folders from the config (scan and watch get `--camera`).
    let config = format!("cameras = [{:?}]\n\n[classifier]\nenabled = false\n", phone.camera);
    std::fs::write(phone.dir.path().join("test-config.toml"), config).expect("config");
    for (n, point) in ["after_journal", "after_rename", "before_commit"].into_iter().enumerate() {
        let name = format!("IMG_tag{n}.jpg");
        let p =
            fotovakt::sample::write_like_android(&phone.camera, &name, &photo(60 + n as u64, false)).expect("write");
        let target = p.to_str().expect("utf-8").to_string();
        let case = format!("T-{n}");
        let killed = phone.run_env(&["tag", &target, "--case", &case], &[("FOTOVAKT_FAULT", point)]);
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{point}: {}", stderr(&killed));
        let out = phone.run(&["scan"]);
        assert!(out.status.success(), "{point}: {}", stderr(&out));
        let item = items(&phone)
            .into_iter()
            .find(|i| i["original_path"].as_str().is_some_and(|o| o.ends_with(&format!("/{name}"))))
            .unwrap_or_else(|| panic!("{point}: the tagged photo has no item"));
        assert_eq!(
            (item["state"].as_str(), item["source"].as_str(), item["case_id"].as_str()),
            (Some("quarantined"), Some("manual"), Some(case.as_str())),
            "{point}: {item}"
        );
        assert!(!p.exists(), "{point}: in the store, not in the camera folder");
    }
    assert!(phone.staged().is_empty());
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}
