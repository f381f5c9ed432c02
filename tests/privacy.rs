//! What the store keeps about an officer's own photos (issue 29), checked with the real binary
//! on a real SQLite ledger, by reading the store's raw files and every row of every table.
//!
//! * After `scan` (and a running `watch`, whose write-ahead log is open) keeps personal photos,
//!   no file under the store holds a file name, the GPS coordinates (as text or as an IEEE
//!   double, either byte order), the capture time, or a BLOB of 1 KB or more.
//! * With `keep_personal_decisions = "1s"`, once it has run out and `scan` runs again, no row
//!   holds either photo's SHA-256 (as text or bytes), neither photo is decided again, and the
//!   counts stay; a marker goes when its file leaves the folder.
//! * A case photo with GPS keeps its coordinates; a released false positive loses path and GPS
//!   when its correction runs out, and is not quarantined again.
//! * `verify` passes throughout.
//!
//! The camera photo with GPS is `tests/data/exif-writers/piexif.jpg` (made by that folder's
//! `make.py`: EXIF as piexif writes it, GPS and DateTimeOriginal), the other photos are
//! generated with GPS and a capture time (`SamplePhoto`).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{stderr, stdout, Phone};
use fotovakt::sample::SamplePhoto;

/// A phone whose config names the camera folder, turns the model off (decisions by context,
/// deterministic) and sets `[privacy]`.
fn phone(privacy: &str) -> Phone {
    phone_with("", privacy)
}

/// [`phone`] with more top-level settings.
fn phone_with(top: &str, privacy: &str) -> Phone {
    let phone = Phone::new();
    let cfg = format!("cameras = [{:?}]\n{top}\n[classifier]\nenabled = false\n[privacy]\n{privacy}\n", phone.camera);
    std::fs::write(phone.dir.path().join("test-config.toml"), cfg).expect("config");
    phone
}

fn json(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn verify_ok(phone: &Phone, when: &str) -> String {
    let o = phone.run(&["verify"]);
    assert!(o.status.success(), "verify {when}: {}", stdout(&o));
    stdout(&o)
}

/// A photo put in the camera folder, and what the agent reads from it.
struct Shot {
    path: PathBuf,
    sha256: String,
    gps: (f64, f64),
    capture_time: chrono::NaiveDateTime,
}

fn shoot(phone: &Phone, name: &str, bytes: &[u8]) -> Shot {
    let path = fotovakt::sample::write_like_android(&phone.camera, name, bytes).expect("write");
    let facts = fotovakt::media::inspect(&path, 64 << 20).expect("inspect as the agent does");
    Shot {
        path,
        sha256: facts.sha256,
        gps: facts.exif.gps.expect("the photo has GPS"),
        capture_time: facts.exif.capture_time.expect("the photo has a capture time"),
    }
}

/// The camera photo with GPS (committed fixture), under a camera-like name.
fn camera_photo(phone: &Phone, name: &str) -> Shot {
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exif-writers/piexif.jpg"))
        .expect("tests/data/exif-writers/piexif.jpg");
    shoot(phone, name, &bytes)
}

fn generated_photo(phone: &Phone, name: &str, seed: u64, gps: (f64, f64)) -> Shot {
    let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).and_then(|d| d.and_hms_opt(14, 15, 0)).expect("time");
    shoot(phone, name, &SamplePhoto { seed, gps: Some(gps), capture_time: Some(t), ..Default::default() }.jpeg())
}

/// Byte strings that would give a photo away.
fn traces(s: &Shot) -> Vec<(String, Vec<u8>)> {
    let name = s.path.file_name().expect("name").to_string_lossy().into_owned();
    let stem = Path::new(&name).file_stem().expect("stem").to_string_lossy().into_owned();
    let mut t =
        vec![(format!("file name {name}"), name.clone().into_bytes()), (format!("name {stem}"), stem.into_bytes())];
    for (what, v) in [("latitude", s.gps.0), ("longitude", s.gps.1)] {
        t.push((format!("{what} as text"), format!("{v}").into_bytes()));
        t.push((format!("{what} to 4 decimals"), format!("{v:.4}").into_bytes()));
        t.push((format!("{what} as a little-endian double"), v.to_le_bytes().to_vec()));
        t.push((format!("{what} as a big-endian double"), v.to_be_bytes().to_vec()));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y:%m:%d %H:%M:%S"] {
        t.push((format!("capture time ({fmt})"), s.capture_time.format(fmt).to_string().into_bytes()));
    }
    t
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under the store (ledger, write-ahead log, its index, head, secret, objects).
fn store_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("store").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(store_files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

/// Nothing under the store gives any of `shots` away.
fn assert_no_traces(phone: &Phone, shots: &[&Shot], when: &str) {
    let files = store_files(&phone.store);
    assert!(files.iter().any(|(p, _)| p.ends_with("ledger.sqlite")), "{when}: {files:?}");
    for s in shots {
        for (what, needle) in traces(s) {
            for (file, bytes) in &files {
                assert!(!contains(bytes, &needle), "{when}: {} holds the {what}", file.display());
            }
        }
    }
}

/// Every (table, column) of the ledger.
fn columns(c: &rusqlite::Connection) -> Vec<(String, String)> {
    let tables: Vec<String> = {
        let mut s = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").expect("tables");
        s.query_map([], |r| r.get(0)).expect("tables").collect::<Result<_, _>>().expect("tables")
    };
    let mut out = Vec::new();
    for t in tables {
        let mut s = c.prepare(&format!("SELECT name FROM pragma_table_info('{t}')")).expect("columns");
        let cols: Vec<String> = s.query_map([], |r| r.get(0)).expect("cols").collect::<Result<_, _>>().expect("cols");
        out.extend(cols.into_iter().map(|col| (t.clone(), col)));
    }
    out
}

fn ledger(phone: &Phone) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(phone.store.join("ledger.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the ledger read-only")
}

/// The (table, column)s of rows that hold `needle` anywhere in their value.
fn rows_holding(c: &rusqlite::Connection, needle: &[u8]) -> Vec<String> {
    columns(c)
        .into_iter()
        .filter(|(t, col)| {
            let n: i64 = c
                .query_row(
                    &format!("SELECT count(*) FROM \"{t}\" WHERE instr(CAST(\"{col}\" AS BLOB), ?1) > 0"),
                    [needle],
                    |r| r.get(0),
                )
                .expect("search");
            n > 0
        })
        .map(|(t, col)| format!("{t}.{col}"))
        .collect()
}

/// No BLOB of 1 KB or more anywhere in the ledger.
fn assert_no_big_blobs(c: &rusqlite::Connection, when: &str) {
    for (t, col) in columns(c) {
        let n: i64 = c
            .query_row(
                &format!("SELECT count(*) FROM \"{t}\" WHERE typeof(\"{col}\") = 'blob' AND length(\"{col}\") >= 1024"),
                [],
                |r| r.get(0),
            )
            .expect("blobs");
        assert_eq!(n, 0, "{when}: {t}.{col} holds a BLOB of 1 KB or more");
    }
}

fn stats(phone: &Phone) -> serde_json::Value {
    json(&phone.run(&["stats", "--format", "json"]))
}

fn personal_rows(c: &rusqlite::Connection) -> Vec<(Option<String>, Option<String>)> {
    let mut s = c.prepare("SELECT state, day FROM personal ORDER BY state").expect("personal");
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows").collect::<Result<_, _>>().expect("rows")
}

#[test]
fn personal_photos_leave_no_trace_in_the_store_and_their_decisions_are_forgotten_on_time() {
    let phone = phone("keep_personal_decisions = \"1s\"");
    let cat = camera_photo(&phone, "IMG_20081022_162839_cat.jpg");
    let walk =
        generated_photo(&phone, "IMG_20261122_141500_walk.jpg", 3, (43.467_448_333_333_34, 11.885_126_666_663_89));
    let o = phone.run(&["scan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("kept 2"), "{}", stdout(&o));
    assert!(cat.path.exists() && walk.path.exists(), "personal photos stay where they are");
    assert_no_traces(&phone, &[&cat, &walk], "after scan");
    {
        let c = ledger(&phone);
        assert_no_big_blobs(&c, "after scan");
        let rows = personal_rows(&c);
        assert_eq!(rows.len(), 2, "one keyed record each: {rows:?}");
        assert!(rows.iter().all(|(state, day)| state.as_deref() == Some("kept") && day.is_some()), "{rows:?}");
        let items: i64 = c.query_row("SELECT count(*) FROM items", [], |r| r.get(0)).expect("items");
        // The store's own `device_key` event (issue 26) is about the store, not a photo.
        let events: i64 = c
            .query_row("SELECT count(*) FROM events WHERE kind != 'device_key' OR item_id IS NOT NULL", [], |r| {
                r.get(0)
            })
            .expect("events");
        assert_eq!((items, events), (0, 0), "no item and no custody event for the officer's own photos");
    }
    let s = stats(&phone);
    assert_eq!((s["items"]["seen"].as_u64(), s["items"]["kept"].as_u64()), (Some(2), Some(2)), "{s}");
    assert_eq!(s["decisions"]["default"]["keep"], 2, "{s}");
    assert_eq!(s["per_day"].as_array().map(Vec::len), Some(1), "counted by day while kept: {s}");
    verify_ok(&phone, "after scan");

    // The watcher, write-ahead log open, keeps a third personal photo with GPS.
    let mut watch = phone
        .command(&["watch"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_millis(500));
    let third = generated_photo(&phone, "IMG_20261122_141600_beach.jpg", 4, (59.912_7, 10.746_1));
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats(&phone)["items"]["seen"].as_u64() != Some(3) {
        assert!(Instant::now() < deadline, "the watcher did not decide the third photo");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(phone.store.join("ledger.sqlite-wal").exists(), "the watcher's write-ahead log is there");
    assert_no_traces(&phone, &[&cat, &walk, &third], "while the watcher runs");
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    assert!(watch.wait().expect("watch exits").success());

    // Past `keep_personal_decisions`: the next scan forgets the decisions, and decides nothing.
    std::thread::sleep(Duration::from_millis(2_100));
    let o = phone.run(&["scan", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "", "no photo decided (or classified) again: {}", stdout(&o));
    assert!(json(&phone.run(&["pending", "--json"])).as_array().is_some_and(Vec::is_empty));
    {
        let c = ledger(&phone);
        let rows = personal_rows(&c);
        assert_eq!(rows, vec![(None, None); 3], "only keyed markers are left: {rows:?}");
        for s in [&cat, &walk, &third] {
            let raw = hex::decode(&s.sha256).expect("hex");
            for needle in [s.sha256.as_bytes(), s.sha256.to_uppercase().as_bytes(), &raw[..]] {
                assert_eq!(
                    rows_holding(&c, needle),
                    Vec::<String>::new(),
                    "a row holds {}'s SHA-256",
                    s.path.display()
                );
            }
        }
        assert_no_big_blobs(&c, "after forgetting");
    }
    assert_no_traces(&phone, &[&cat, &walk, &third], "after forgetting");
    let s = stats(&phone);
    assert_eq!((s["items"]["seen"].as_u64(), s["items"]["kept"].as_u64()), (Some(3), Some(3)), "counts stay: {s}");
    assert_eq!(s["decisions"]["default"]["keep"], 3, "{s}");
    assert_eq!(s["per_day"].as_array().map(Vec::len), Some(0), "no longer by day: {s}");
    verify_ok(&phone, "after forgetting");

    // A photo that leaves the folder takes its marker with it; the others stay settled.
    std::fs::remove_file(&walk.path).expect("the officer deletes a photo");
    let o = phone.run(&["scan"]);
    assert!(o.status.success() && stdout(&o).contains("nothing new"), "{}", stdout(&o));
    assert_eq!(personal_rows(&ledger(&phone)).len(), 2);
    verify_ok(&phone, "after a photo left");
}

#[test]
fn a_case_photo_keeps_its_place_and_a_released_one_loses_it_when_its_correction_runs_out() {
    let phone = phone("keep_corrections = \"2s\"");
    let o = phone.run(&["session", "start", "--case", "C-29", "--officer", "ola"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let case = camera_photo(&phone, "IMG_case_scene.jpg");
    let wrong = generated_photo(&phone, "IMG_lunch_with_kids.jpg", 9, (60.391_3, 5.322_1));
    let o = phone.run(&["scan"]);
    assert!(stdout(&o).contains("quarantined 2"), "{}{}", stdout(&o), stderr(&o));
    assert!(phone.run(&["session", "stop"]).status.success());
    let items = json(&phone.run(&["list", "--json"]));
    let id_of = |name: &str| {
        items
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["original_path"].as_str().is_some_and(|p| p.ends_with(name)))
            .and_then(|i| i["id"].as_i64())
            .expect("item")
    };
    let (case_id, wrong_id) = (id_of("IMG_case_scene.jpg"), id_of("IMG_lunch_with_kids.jpg"));
    let o = phone.run(&["release", &wrong_id.to_string(), "--reason", "my own photo", "--officer", "ola"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wrong.path.exists(), "released to where it was shot");
    let shown = json(&phone.run(&["show", &wrong_id.to_string(), "--json"]));
    assert_eq!(shown["item"]["gps"][0], wrong.gps.0, "kept while the correction is: {shown}");
    verify_ok(&phone, "after the release");
    // A signed checkpoint (issue 26) made while the released photo's events still hold their
    // data, kept off the phone.
    let off = tempfile::tempdir().expect("tempdir");
    let checkpoint = off.path().join("checkpoint.json");
    std::fs::copy(phone.store.join("ledger.checkpoint"), &checkpoint).expect("a checkpoint after the release");

    // The correction runs out; `purge` lets go of it.
    std::thread::sleep(Duration::from_millis(2_200));
    let o = phone.run(&["purge"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 released item(s) forgotten"), "{}", stdout(&o));
    let shown = json(&phone.run(&["show", &wrong_id.to_string(), "--json"]));
    let item = &shown["item"];
    assert_eq!((item["state"].as_str(), item["original_path"].as_str()), (Some("released"), Some("")), "{shown}");
    assert!(item["gps"].is_null() && item["capture_time"].is_null(), "{shown}");
    assert_eq!(item["sha256"], wrong.sha256.as_str(), "the hash stays: the same bytes are not judged again");
    let kinds: Vec<&str> =
        shown["pruned"].as_array().expect("pruned").iter().filter_map(|e| e["kind"].as_str()).collect();
    for k in ["intake", "decided", "release_requested", "released"] {
        assert!(kinds.contains(&k), "{k} pruned: {kinds:?}");
    }
    let text = verify_ok(&phone, "after the correction ran out");
    assert!(text.contains("pruned on schedule"), "{text}");
    // Pruning keeps every row's hash (hash version 2), so the checkpoint still holds.
    let o = phone.run(&["verify", "--checkpoint", checkpoint.to_str().expect("utf-8")]);
    assert!(o.status.success(), "verify --checkpoint after pruning: {}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("pruned on schedule") && stdout(&o).contains("extends 1 signed checkpoint(s)"),
        "{}",
        stdout(&o)
    );
    assert_no_traces(&phone, &[&wrong], "after the correction ran out");
    assert_eq!(ledger(&phone).query_row("SELECT count(*) FROM corrections", [], |r| r.get::<_, i64>(0)).ok(), Some(0));

    // The case photo keeps its record, coordinates included, in the ledger and in `show`.
    let shown = json(&phone.run(&["show", &case_id.to_string(), "--json"]));
    assert_eq!(shown["item"]["gps"][0], case.gps.0, "{shown}");
    assert_eq!(shown["item"]["gps"][1], case.gps.1, "{shown}");
    assert!(shown["item"]["original_path"].as_str().is_some_and(|p| p.ends_with("IMG_case_scene.jpg")), "{shown}");
    let db = std::fs::read(phone.store.join("ledger.sqlite")).expect("ledger");
    assert!(contains(&db, &case.gps.0.to_be_bytes()), "a case photo's latitude is in the ledger");

    // The released photo is decided once more, by its release (no model), and stays.
    let o = phone.run(&["scan", "--json"]);
    let line: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one outcome");
    assert_eq!((line["kind"].as_str(), line["source"].as_str()), (Some("kept"), Some("released")), "{line}");
    assert!(wrong.path.exists());
    assert_eq!(phone.stored().len(), 1, "not quarantined again");
    assert!(stdout(&phone.run(&["scan"])).contains("nothing new"));
    assert_no_traces(&phone, &[&wrong], "after it was decided again");
    verify_ok(&phone, "at the end");
}

/// Poll `f` until it holds (30 s at most).
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `watch` prunes on its reconcile timer, and the bytes leave its open write-ahead log too:
/// the release was written by another process while the watcher held the ledger open, so its
/// frames stay in the log until the watcher checkpoints and truncates it.
#[test]
fn a_running_watcher_forgets_on_its_reconcile_and_the_write_ahead_log_lets_go_too() {
    let phone =
        phone_with("reconcile_interval = \"1s\"", "keep_personal_decisions = \"1s\"\nkeep_corrections = \"2s\"");
    let mut watch = phone
        .command(&["watch"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    assert!(phone.run(&["session", "start", "--case", "C-30"]).status.success());
    let wrong = generated_photo(&phone, "IMG_birthday_party.jpg", 11, (58.969_9, 5.731_1));
    wait_until("the session photo is quarantined", || stats(&phone)["items"]["quarantined"] == 1);
    assert!(phone.run(&["session", "stop"]).status.success());
    let own = generated_photo(&phone, "IMG_sunset_at_home.jpg", 12, (63.430_5, 10.395_1));
    let id = json(&phone.run(&["list", "--json"]))[0]["id"].to_string();
    assert!(phone.run(&["release", &id, "--reason", "private"]).status.success());
    assert!(wrong.path.exists() && own.path.exists());
    wait_until("the released photo is forgotten", || {
        json(&phone.run(&["show", &id, "--json"]))["item"]["original_path"] == ""
    });
    wait_until("the personal decisions are forgotten", || {
        personal_rows(&ledger(&phone)).iter().all(|(state, _)| state.is_none())
    });
    // No reader for two reconcile ticks: a scrub a reader held up is done again meanwhile.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(phone.store.join("ledger.sqlite-wal").exists(), "the watcher still has the ledger open");
    assert_no_traces(&phone, &[&wrong, &own], "while the watcher runs");
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    assert!(watch.wait().expect("watch exits").success());
    assert!(wrong.path.exists() && own.path.exists() && phone.stored().is_empty());
    assert_no_traces(&phone, &[&wrong, &own], "after the watcher stopped");
    let text = verify_ok(&phone, "at the end");
    assert!(text.contains("pruned on schedule"), "{text}");
}

/// A personal photo judged in staging (issue 25: a work site that quarantines makes every
/// photo go out of sight first) leaves nothing either: no item, no event, and the journal row
/// that named it while it was staged leaves the ledger and its write-ahead log too, also while
/// the watcher has them open.
#[test]
fn a_personal_photo_judged_in_staging_leaves_no_trace_either() {
    let site = "[[work_sites]]\nname = \"Storskog\"\nlat = 69.6617\nlon = 30.1271\nradius_m = 500\n";
    let phone = phone_with(&format!("reconcile_interval = \"1s\"\n{site}"), "");
    let mut watch = phone
        .command(&["watch"], &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_millis(500));
    let own = generated_photo(&phone, "IMG_20261122_141700_garden.jpg", 5, (59.951_2, 10.713_4));
    wait_until("the watcher decides the photo", || stats(&phone)["items"]["seen"].as_u64() == Some(1));
    assert!(own.path.exists(), "back at its name");
    assert!(phone.staged().is_empty(), "{:?}", phone.staged());
    // A reconcile tick (1 s) scrubs the write-ahead log that held the stash row.
    std::thread::sleep(Duration::from_millis(2_500));
    assert!(phone.store.join("ledger.sqlite-wal").exists(), "the watcher still has the ledger open");
    assert_no_traces(&phone, &[&own], "while the watcher runs");
    unsafe { libc::kill(watch.id() as i32, libc::SIGTERM) };
    assert!(watch.wait().expect("watch exits").success());
    assert_no_traces(&phone, &[&own], "after the watcher stopped");
    let c = ledger(&phone);
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql);
    // The store's own `device_key` event (issue 26) is about the store, not a photo.
    let events = count("SELECT count(*) FROM events WHERE kind != 'device_key' OR item_id IS NOT NULL");
    assert_eq!((count("SELECT count(*) FROM items"), events), (0, 0));
    assert_eq!(count("SELECT count(*) FROM moves"), 0, "the stash row is closed");
    assert_eq!(personal_rows(&c).len(), 1, "one keyed record");
    verify_ok(&phone, "at the end");
}
