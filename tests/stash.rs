//! Out of sight first (issue 25, items 1–2): a new camera file is renamed into the staging
//! folder before it is hashed and judged; case material goes from there into the store, a
//! photo judged personal goes back to its name and leaves no item and no event naming it
//! (issue 29: a keyed record only). Real binary or library, real SQLite, real JPEGs; the
//! phone-like FUSE filesystem where the phone has one.

mod common;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

use std::io::BufRead;
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
    let pause = format!("{point}:1500");
    let mut child = phone
        .command(&["scan"], &[("FOTOVAKT_PAUSE", pause.as_str())])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn scan");
    let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).expect("read stderr");
        log.push_str(&line);
        assert!(n > 0, "{point}: scan ended before it paused:\n{log}");
        if line.contains("pausing") {
            break;
        }
    }
    meddle();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).expect("read stderr");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{point}: scan failed:\n{log}{rest}");
    out
}

fn items(phone: &Phone) -> Vec<serde_json::Value> {
    let out = phone.run(&["list", "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json").as_array().expect("array").clone()
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
