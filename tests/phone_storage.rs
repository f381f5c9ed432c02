//! The core on Android-like storage (issue 10): the camera folder on the MediaProvider-like
//! FUSE filesystem (`tests/common/mediafs/`) or on a read-only bind mount, the store on disk,
//! so every quarantine is the cross-filesystem copy path. Drives the real binary.
//!
//! * quarantine, `release` (written back without rename flags or links), `tag`, `verify`;
//! * an original that cannot be deleted after its verified copy: `copied_original_kept`,
//!   audited, counted in `stats`, retried by reconcile, never copied twice;
//! * a release whose write-back fails: the item stays in the store, audited and counted;
//! * `media_location_access = false` with GPS redaction on: nothing is moved, and why is
//!   recorded; once access is back the same item is decided on the real bytes.
//!
//! Needs root and /dev/fuse (CI has both); prints `SKIP:` elsewhere.

mod common;

#[path = "common/mediafs/mod.rs"]
mod mediafs;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{sha256, stderr, stdout, Phone};
use mediafs::{MediaFs, Op};

const SITE: (f64, f64) = (69.6617, 30.1271);

/// A phone whose camera folder is on mediafs (`fs` is dropped, so unmounted, before the
/// temporary tree is removed).
struct Rig {
    fs: MediaFs,
    phone: Phone,
}

impl Rig {
    fn new(what: &str, extra_config: &str) -> Option<Rig> {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = MediaFs::mount_or_skip(dir.path(), what)?;
        let camera = fs.mountpoint.join("DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera folder through the mount");
        let store = dir.path().join("private/store");
        let phone = Phone { dir, camera, store };
        write_config(&phone, extra_config);
        Some(Rig { fs, phone })
    }
}

/// The test config (`Phone::command` uses it): the camera folder, a work site, no model.
fn write_config(phone: &Phone, extra: &str) {
    let text = format!(
        "cameras = [{:?}]\n{extra}\n[[work_sites]]\nname = \"Storskog\"\nlat = {}\nlon = {}\nradius_m = 500\n\n\
         [classifier]\nenabled = false\n",
        phone.camera, SITE.0, SITE.1
    );
    std::fs::write(phone.dir.path().join("test-config.toml"), text).expect("config");
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    o
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn shoot(phone: &Phone, name: &str, seed: u64, at_site: bool) -> (PathBuf, String) {
    let bytes = fotovakt::sample::SamplePhoto { seed, gps: at_site.then_some(SITE), ..Default::default() }.jpeg();
    let p = fotovakt::sample::write_like_android(&phone.camera, name, &bytes).expect("write photo");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    (p, sha)
}

fn items(phone: &Phone) -> Vec<serde_json::Value> {
    json(&ok(phone.run(&["list", "--all", "--json"]))).as_array().cloned().unwrap_or_default()
}

/// Event kinds of one item, oldest first (read from the ledger with SQLite, read-only).
fn event_kinds(phone: &Phone, item: i64) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        phone.store.join("ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("ledger");
    let mut stmt = conn.prepare("SELECT kind FROM events WHERE item_id = ?1 ORDER BY seq").expect("query");
    let rows = stmt.query_map([item], |r| r.get::<_, String>(0)).expect("rows");
    rows.map(|r| r.expect("row")).collect()
}

fn camera_leftovers(phone: &Phone) -> Vec<String> {
    std::fs::read_dir(&phone.camera)
        .expect("camera")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains("fotovakt"))
        .collect()
}

#[test]
fn quarantine_release_and_tag_work_on_mediaprovider_like_storage() {
    let Some(rig) = Rig::new("quarantine and release", "") else { return };
    let phone = &rig.phone;
    let (site, site_sha) = shoot(phone, "IMG_site.jpg", 1, true);
    let (personal, _) = shoot(phone, "IMG_personal.jpg", 2, false);
    let out = ok(phone.run(&["scan"]));
    assert!(stdout(&out).contains("quarantined 1"), "{}", stdout(&out));
    assert!(!site.exists(), "the original is gone from the camera folder");
    assert!(personal.exists());
    let stored = phone.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(sha256(&stored[0]), site_sha, "the store holds the camera's bytes");
    let id =
        items(phone).iter().find(|i| i["sha256"] == site_sha.as_str()).and_then(|i| i["id"].as_i64()).expect("item");
    // Release: no RENAME_NOREPLACE, no link() here; the write-back must still never replace.
    let out = ok(phone.run(&["release", &id.to_string(), "--reason", "false positive", "--officer", "o-1"]));
    assert!(site.exists(), "released back to its path: {}", stdout(&out));
    assert_eq!(sha256(&site), site_sha, "byte for byte");
    assert!(phone.stored().is_empty(), "the store copy is gone after the release");
    assert!(camera_leftovers(phone).is_empty(), "no staging file left: {:?}", camera_leftovers(phone));
    // Tag the personal photo by path: quarantined across filesystems.
    let cfg = phone.dir.path().join("test-config.toml");
    ok(phone.run(&["--config", &cfg.to_string_lossy(), "tag", &personal.to_string_lossy(), "--case", "C-1"]));
    assert!(!personal.exists());
    assert_eq!(phone.stored().len(), 1);
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
    // A second release of a photo whose name is taken meanwhile gets a fresh name: nothing replaced.
    let tagged =
        items(phone).iter().find(|i| i["state"] == "quarantined").and_then(|i| i["id"].as_i64()).expect("item");
    std::fs::write(&personal, b"someone else's file").expect("occupy the name");
    ok(phone.run(&["release", &tagged.to_string(), "--reason", "personal"]));
    assert_eq!(std::fs::read(&personal).expect("read"), b"someone else's file", "never overwritten");
    assert!(phone.camera.join(format!("IMG_personal-released-{tagged}.jpg")).exists());
}

/// The checks shared by the FUSE and the bind-mount variants once the original is undeletable.
fn assert_original_kept(phone: &Phone, original: &Path, sha: &str) -> i64 {
    assert!(original.exists(), "the original stays");
    assert_eq!(sha256(original), sha);
    let stored = phone.stored();
    assert_eq!(stored.len(), 1, "exactly one verified copy: {stored:?}");
    assert_eq!(sha256(&stored[0]), sha);
    let all = items(phone);
    assert_eq!(all.len(), 1, "one item, however often it was scanned: {all:?}");
    assert_eq!(all[0]["state"], "copied_original_kept", "{all:?}");
    let id = all[0]["id"].as_i64().expect("id");
    assert!(event_kinds(phone, id).contains(&"original_kept".to_string()), "{:?}", event_kinds(phone, id));
    let s = json(&ok(phone.run(&["stats", "--format", "json"])));
    assert_eq!(s["storage"]["originals_kept"], 1, "{s}");
    let table = stdout(&ok(phone.run(&["stats"])));
    assert!(table.contains("originals kept 1"), "{table}");
    let om = stdout(&ok(phone.run(&["stats", "--format", "openmetrics"])));
    assert!(om.contains("fotovakt_items_original_kept 1"), "{om}");
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
    id
}

#[test]
fn an_undeletable_original_on_mediafs_is_a_final_audited_state_and_reconcile_retries() {
    let Some(rig) = Rig::new("undeletable originals", "") else { return };
    let phone = &rig.phone;
    // All-files access revoked: MediaProvider refuses to delete another app's file.
    rig.fs.fail(Op::Unlink, None, libc::EACCES);
    let (p, sha) = shoot(phone, "IMG_site.jpg", 3, true);
    let out = ok(phone.run(&["scan"]));
    assert!(stderr(&out).contains("original cannot be deleted"), "a log line says so: {}", stderr(&out));
    for _ in 0..3 {
        ok(phone.run(&["scan"]));
    }
    let id = assert_original_kept(phone, &p, &sha);
    // The watcher starts and stops cleanly too (it reconciles at start).
    let w = phone.command(&["watch"], &[]).stderr(std::process::Stdio::piped()).spawn().expect("watch");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
    let o = w.wait_with_output().expect("watch exits");
    assert!(o.status.success(), "watch: {}", stderr(&o));
    assert_original_kept(phone, &p, &sha);
    // Access granted again: the next reconcile deletes the original; still one copy.
    rig.fs.clear_faults();
    ok(phone.run(&["scan"]));
    assert!(!p.exists(), "deleted on retry");
    let all = items(phone);
    assert_eq!((all.len(), all[0]["state"].as_str()), (1, Some("quarantined")), "{all:?}");
    assert!(event_kinds(phone, id).contains(&"original_removed".to_string()));
    assert_eq!(phone.stored().len(), 1);
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn an_undeletable_original_on_a_read_only_bind_mount_is_kept_and_audited() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        common::skip("not root, so no read-only bind mount; undeletable originals not exercised there");
        return;
    }
    let phone = Phone::new();
    write_config(&phone, "");
    let (p, sha) = shoot(&phone, "IMG_site.jpg", 4, true);
    let cam = phone.camera.to_string_lossy().into_owned();
    let bind = std::process::Command::new("mount").args(["--bind", &cam, &cam]).status();
    if !bind.is_ok_and(|s| s.success()) {
        common::skip("mount --bind refused here");
        return;
    }
    let ro = std::process::Command::new("mount").args(["-o", "remount,bind,ro", &cam]).status();
    let unmount = || {
        let _ = std::process::Command::new("umount").arg(&cam).status();
    };
    if !ro.is_ok_and(|s| s.success()) {
        unmount();
        common::skip("remount,ro refused here");
        return;
    }
    let result = std::panic::catch_unwind(|| {
        for _ in 0..4 {
            ok(phone.run(&["scan"]));
        }
        assert_original_kept(&phone, &p, &sha)
    });
    unmount();
    let id = result.expect("checks on the read-only mount");
    ok(phone.run(&["scan"]));
    assert!(!p.exists(), "deleted once the mount is writable again");
    assert!(event_kinds(&phone, id).contains(&"original_removed".to_string()));
    assert_eq!(items(&phone)[0]["state"], "quarantined");
}

#[test]
fn a_release_whose_write_back_fails_stays_in_the_store_audited_and_counted() {
    let Some(rig) = Rig::new("failed write-back", "") else { return };
    let phone = &rig.phone;
    let (p, sha) = shoot(phone, "IMG_site.jpg", 5, true);
    ok(phone.run(&["scan"]));
    let id = items(phone)[0]["id"].as_i64().expect("id");
    // The camera folder refuses renames (EROFS): the staged copy cannot be put in place.
    rig.fs.fail(Op::Rename, None, libc::EROFS);
    let out = phone.run(&["release", &id.to_string(), "--reason", "false positive"]);
    assert!(!out.status.success(), "the release reports its failure");
    assert!(stderr(&out).contains("release failed") || stderr(&out).contains("Read-only"), "{}", stderr(&out));
    assert!(!p.exists(), "nothing at the original path");
    assert!(camera_leftovers(phone).is_empty(), "no staging file or claimed name left: {:?}", camera_leftovers(phone));
    let all = items(phone);
    assert_eq!(all[0]["state"], "quarantined", "{all:?}");
    assert!(event_kinds(phone, id).contains(&"release_failed".to_string()));
    let s = json(&ok(phone.run(&["stats", "--format", "json"])));
    assert_eq!(s["storage"]["releases_failed"], 1, "{s}");
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
    rig.fs.clear_faults();
    ok(phone.run(&["release", &id.to_string(), "--reason", "false positive"]));
    assert_eq!(sha256(&p), sha);
}

#[test]
fn without_media_location_access_redacted_reads_are_never_stored_and_why_is_recorded() {
    let Some(rig) = Rig::new("media-location gate", "media_location_access = false") else { return };
    let phone = &rig.phone;
    rig.fs.set_redaction(true);
    let (p, sha) = shoot(phone, "IMG_site.jpg", 6, true);
    let backing = rig.fs.backing.join(rig.fs.rel(&p));
    assert_ne!(sha256(&p), sha, "the filesystem really redacts what the agent reads");
    let out = ok(phone.run(&["scan"]));
    let log = stderr(&out);
    assert_eq!(log.matches("media_location_access is off").count(), 1, "said once at start: {log}");
    assert!(p.exists() && sha256(&backing) == sha, "the original is untouched");
    assert!(phone.stored().is_empty(), "nothing stored from altered bytes");
    ok(phone.run(&["scan"]));
    // The rules keep it on what could be read (its GPS redacted): as far as can be told, the
    // officer's own photo, so a keyed record in state `held`, no item (issue 29).
    assert!(items(phone).is_empty(), "{:?}", items(phone));
    // A photo the rules would quarantine (shot in a case session) is held as an item, with
    // why in a `held` event.
    ok(phone.run(&["session", "start", "--case", "H-1"]));
    let (q, q_sha) = shoot(phone, "IMG_session.jpg", 7, false);
    ok(phone.run(&["scan"]));
    ok(phone.run(&["session", "stop"]));
    let all = items(phone);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["state"], "held");
    let id = all[0]["id"].as_i64().expect("id");
    assert!(event_kinds(phone, id).contains(&"held".to_string()));
    assert!(q.exists() && phone.stored().is_empty(), "held: nothing moved");
    let s = json(&ok(phone.run(&["stats", "--format", "json"])));
    assert_eq!(
        (s["storage"]["media_location_access"].as_bool(), s["storage"]["held"].as_u64()),
        (Some(false), Some(2)),
        "{s}"
    );
    assert!(stdout(&ok(phone.run(&["stats"]))).contains("media location access NO"));
    let om = stdout(&ok(phone.run(&["stats", "--format", "openmetrics"])));
    assert!(om.contains("fotovakt_media_location_access 0"), "{om}");
    // The shell reports the permission granted: reads are no longer redacted, both photos are
    // decided on the camera's bytes: the work-site rule fires on the real GPS (a new item, the
    // keyed record gives way), and the held item is the same item, decided again.
    rig.fs.set_redaction(false);
    write_config(phone, "media_location_access = true");
    ok(phone.run(&["scan"]));
    let all = items(phone);
    assert_eq!(all.len(), 2, "{all:?}");
    let site = all.iter().find(|i| i["sha256"] == sha.as_str()).expect("the work-site photo");
    assert_eq!((site["state"].as_str(), site["source"].as_str()), (Some("quarantined"), Some("work_site")), "{all:?}");
    let held = all.iter().find(|i| i["id"] == id).expect("the held item, decided again");
    assert_eq!(
        (held["state"].as_str(), held["sha256"].as_str()),
        (Some("quarantined"), Some(q_sha.as_str())),
        "{all:?}"
    );
    assert!(!p.exists() && !q.exists());
    let stored: Vec<String> = phone.stored().iter().map(|f| sha256(f)).collect();
    assert!(stored.contains(&sha) && stored.contains(&q_sha), "stored bytes are the camera's bytes");
    let s = json(&ok(phone.run(&["stats", "--format", "json"])));
    assert_eq!(s["storage"]["held"], 0, "{s}");
    let v = json(&ok(phone.run(&["verify", "--json"])));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v}");
}
