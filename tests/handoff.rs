//! Hand-off to the case file (issue 6): `export` and `verify-package`, `ack`, retention and
//! `purge`, through the real binary and the library, with real files, JPEGs and SQLite.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{sha256, stderr, stdout, wait_until, Phone};
use fotovakt::config::RetentionConfig;
use fotovakt::ledger::Problem;
use fotovakt::retention::{self, Reason, DAY_MS};
use fotovakt::sample::SamplePhoto;

/// The test config: the model off (these tests are about the core), plus `extra` TOML.
fn configure(phone: &Phone, extra: &str) {
    std::fs::write(phone.dir.path().join("test-config.toml"), format!("[classifier]\nenabled = false\n{extra}"))
        .expect("config");
}

/// A phone with one personal photo (kept) and three photos of case C-1 (one with GPS),
/// quarantined through a case session.
fn phone_with_case(extra_config: &str) -> Phone {
    let phone = Phone::new();
    configure(&phone, extra_config);
    phone.shoot("IMG_personal.jpg", 1);
    assert!(phone.run(&["scan"]).status.success());
    let o = phone.run(&["session", "start", "--case", "C-1", "--officer", "ola"]);
    assert!(o.status.success(), "{}", stderr(&o));
    phone.shoot("IMG_c1.jpg", 11);
    phone.shoot("IMG_c2.jpg", 12);
    let gps = SamplePhoto { seed: 13, gps: Some((69.6617, 30.1271)), ..Default::default() }.jpeg();
    fotovakt::sample::write_like_android(&phone.camera, "IMG_c3.jpg", &gps).expect("write");
    let o = phone.run(&["scan"]);
    assert!(stdout(&o).contains("quarantined 3"), "{}", stdout(&o));
    assert!(phone.run(&["session", "stop"]).status.success());
    phone
}

fn out_dir(phone: &Phone) -> PathBuf {
    let d = phone.dir.path().join("handoff");
    std::fs::create_dir_all(&d).expect("out dir");
    d
}

fn export(phone: &Phone, case: &str, out: &Path) -> String {
    let o = phone.run(&["export", "--case", case, "--out", out.to_str().expect("utf-8"), "--officer", "ola"]);
    assert!(o.status.success(), "export: {}", stderr(&o));
    let text = stdout(&o);
    let digest = text.lines().find_map(|l| l.strip_prefix("package sha256 ")).expect("digest printed").to_string();
    assert_eq!(digest.len(), 64, "{text}");
    digest
}

/// `verify-package` with no config and no store at all: it must work offline.
fn verify_package(path: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("verify-package")
        .arg(path)
        .env("FOTOVAKT_CONFIG", "/nonexistent/fotovakt.toml")
        .env("NO_COLOR", "1")
        .output()
        .expect("run verify-package")
}

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn export_then_verify_package_passes_for_dir_and_zip() {
    let phone = phone_with_case("");
    let out = out_dir(&phone);
    let dir = out.join("C-1");
    let digest = export(&phone, "C-1", &dir);

    // The originals, byte for byte, under unique readable names.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let items = manifest["items"].as_array().expect("items");
    assert_eq!(items.len(), 3);
    assert_eq!(manifest["case_id"], "C-1");
    let stored: Vec<String> = phone.stored().iter().map(|p| sha256(p)).collect();
    for it in items {
        let file = it["file"].as_str().expect("file");
        assert!(file.starts_with(&format!("files/{}-", it["item"])), "{file}");
        let sha = sha256(&dir.join(file));
        assert_eq!(it["sha256"], sha.as_str(), "{file} is byte for byte the original");
        assert!(stored.contains(&sha), "{file}: the store still holds it");
        assert!(it["original_name"].as_str().is_some_and(|n| n.starts_with("IMG_c")), "{it}");
        assert_eq!(it["source"], "session");
        assert_eq!(it["case_id"], "C-1");
    }
    let with_gps = items.iter().find(|i| i["original_name"] == "IMG_c3.jpg").expect("gps photo");
    assert!((with_gps["gps_lat"].as_f64().expect("lat") - 69.6617).abs() < 1e-3, "{with_gps}");
    let csv = std::fs::read_to_string(dir.join("manifest.csv")).expect("csv");
    let header = csv.lines().next().expect("header");
    for col in [
        "file",
        "original_name",
        "sha256",
        "size",
        "capture_time",
        "gps_lat",
        "gps_lon",
        "first_seen",
        "quarantined_at",
        "action",
        "source",
        "rule",
        "officer",
        "case_id",
        "tags",
    ] {
        assert!(header.contains(&format!("\"{col}\"")), "column {col}: {header}");
    }
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // The custody log: each event's hash recomputes from its own fields.
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("custody.json")).expect("log")).expect("json");
    let events = log["events"].as_array().expect("events");
    assert!(events.len() >= 9, "intake, decided, quarantined for each of 3 items: {}", events.len());
    for e in events {
        // Written now: hash version 2, over the SHA-256 of the data (which must match it).
        assert_eq!(e["v"], 2, "{e}");
        let data = e["data"].as_str().expect("data");
        assert_eq!(e["data_sha256"], fotovakt::ledger::data_sha256(data).as_str(), "{e}");
        let recomputed = fotovakt::ledger::event_hash_v2(
            e["seq"].as_i64().expect("seq"),
            e["at_ms"].as_i64().expect("at"),
            e["kind"].as_str().expect("kind"),
            e["item"].as_i64(),
            e["data_sha256"].as_str().expect("data_sha256"),
            e["prev_hash"].as_str().expect("prev"),
        );
        assert_eq!(e["hash"], recomputed.as_str(), "{e}");
    }
    assert_eq!(std::fs::read_to_string(dir.join("package.sha256")).expect("digest").trim(), digest);

    let v = verify_package(&dir);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    assert!(stdout(&v).starts_with("OK: case C-1: 3 files"), "{}", stdout(&v));

    // The same as a zip, and nothing half-written left beside either.
    let zip = out.join("C-1.zip");
    let zip_digest = export(&phone, "C-1", &zip);
    let v = verify_package(&zip);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    let left: Vec<String> =
        std::fs::read_dir(&out).expect("ls").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert!(left.iter().all(|n| !n.starts_with(".fotovakt-partial")), "{left:?}");

    // Exporting is audited: every item has one `export` event per package, with its digest.
    let id = items[0]["item"].to_string();
    let show = json(&phone.run(&["show", &id, "--json"]));
    let exports: Vec<&serde_json::Value> =
        show["events"].as_array().expect("events").iter().filter(|e| e["kind"] == "export").collect();
    assert_eq!(exports.len(), 2, "{show}");
    assert_eq!(exports[0]["data"]["package_sha256"], digest.as_str());
    assert_eq!(exports[1]["data"]["package_sha256"], zip_digest.as_str());
    assert_eq!(exports[0]["data"]["officer"], "ola");
    let o = phone.run(&["verify"]);
    assert!(o.status.success(), "the ledger still verifies after exports: {}", stdout(&o));
    assert_eq!(phone.stored().len(), 3, "export copies; the store keeps the originals");
}

/// A photo first kept and later tagged (found by the demo, which tags a kept photo): the kept
/// photo had a keyed record only, so its custody log starts at the tag, with one `decided`
/// event; the package carries it and must verify.
#[test]
fn a_kept_photo_tagged_later_exports_and_verifies_with_its_latest_decision() {
    let phone = phone_with_case("");
    let personal = phone.camera.join("IMG_personal.jpg");
    // Tagging by path: the config must know the camera folder.
    let cfg = format!("cameras = [{:?}]\n[classifier]\nenabled = false\n", phone.camera);
    std::fs::write(phone.dir.path().join("test-config.toml"), cfg).expect("config");
    let o = phone.run(&["tag", personal.to_str().expect("utf-8"), "--case", "C-1", "--officer", "ola"]);
    assert!(o.status.success(), "tag: {}", stderr(&o));
    let dir = out_dir(&phone).join("C-1");
    export(&phone, "C-1", &dir);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let items = manifest["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    let tagged = items.iter().find(|i| i["original_name"] == "IMG_personal.jpg").expect("tagged photo");
    assert_eq!(tagged["source"], "manual", "{tagged}");
    assert_eq!(tagged["action"], "quarantine", "{tagged}");
    let custody: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("custody.json")).expect("custody")).expect("json");
    let decided = custody["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["item"] == tagged["item"] && e["kind"] == "decided")
        .count();
    assert_eq!(decided, 1, "quarantined by the tag; the personal decision before it was never an event");
    let v = verify_package(&dir);
    assert!(v.status.success(), "verify-package: {}", stdout(&v));
}

fn problems_of(path: &Path) -> String {
    let v = verify_package(path);
    assert_eq!(v.status.code(), Some(1), "a damaged package must fail: {}", stdout(&v));
    stdout(&v)
}

#[test]
fn damaged_packages_fail_and_name_what_is_wrong() {
    let phone = phone_with_case("");
    let out = out_dir(&phone);

    // One byte flipped in a packaged photo.
    let a = out.join("a");
    export(&phone, "C-1", &a);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("manifest.json")).expect("manifest")).expect("json");
    let first = manifest["items"][0]["file"].as_str().expect("file").to_string();
    let mut bytes = std::fs::read(a.join(&first)).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(a.join(&first), &bytes).expect("write");
    let text = problems_of(&a);
    assert!(text.contains(&format!("PROBLEM: {first}: SHA-256 differs from the manifest")), "{text}");
    assert_eq!(text.matches("PROBLEM").count(), 1, "only that file: {text}");

    // A manifest field edited (the deciding rule): the CSV, the decided event and the digest disagree.
    let b = out.join("b");
    export(&phone, "C-1", &b);
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("manifest.json")).expect("manifest")).expect("json");
    m["items"][1]["rule"] = "an officer said so".into();
    std::fs::write(b.join("manifest.json"), serde_json::to_vec_pretty(&m).expect("json")).expect("write");
    let text = problems_of(&b);
    assert!(text.contains("package.sha256: does not match"), "{text}");
    assert!(text.contains("manifest.csv: row 2"), "{text}");
    assert!(text.contains("rule in the manifest differs from its decided event"), "{text}");

    // A manifest SHA-256 swapped for another file's: caught against the file and its intake event.
    let b2 = out.join("b2");
    export(&phone, "C-1", &b2);
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b2.join("manifest.json")).expect("manifest")).expect("json");
    m["items"][0]["sha256"] = m["items"][1]["sha256"].clone();
    std::fs::write(b2.join("manifest.json"), serde_json::to_vec_pretty(&m).expect("json")).expect("write");
    let text = problems_of(&b2);
    assert!(text.contains("is not the one its intake event"), "{text}");

    // A custody event edited: its hash no longer matches.
    let c = out.join("c");
    export(&phone, "C-1", &c);
    let mut log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.join("custody.json")).expect("log")).expect("json");
    let events = log["events"].as_array_mut().expect("events");
    let decided = events.iter_mut().find(|e| e["kind"] == "decided").expect("decided event");
    let seq = decided["seq"].as_i64().expect("seq");
    let data = decided["data"].as_str().expect("data").replace("\"session\"", "\"manual\"");
    decided["data"] = data.into();
    std::fs::write(c.join("custody.json"), serde_json::to_vec_pretty(&log).expect("json")).expect("write");
    let text = problems_of(&c);
    assert!(text.contains(&format!("event {seq} (decided): contents do not match its hash")), "{text}");

    // A file removed, another added.
    let d = out.join("d");
    export(&phone, "C-1", &d);
    std::fs::remove_file(d.join(&first)).expect("rm");
    std::fs::write(d.join("files/extra.jpg"), b"smuggled").expect("write");
    let text = problems_of(&d);
    assert!(text.contains(&format!("{first}: listed in the manifest but missing")), "{text}");
    assert!(text.contains("files/extra.jpg: in the package but not in the manifest"), "{text}");

    // One byte flipped inside a zip's stored photo.
    let z = out.join("z.zip");
    export(&phone, "C-1", &z);
    let original = std::fs::read(a.join(manifest["items"][2]["file"].as_str().expect("file"))).expect("read");
    let mut zip = std::fs::read(&z).expect("zip");
    let window = &original[1000..1064];
    let at = zip.windows(window.len()).position(|w| w == window).expect("stored bytes are in the archive");
    zip[at + 10] ^= 0x01;
    std::fs::write(&z, &zip).expect("write");
    let text = problems_of(&z);
    let third = manifest["items"][2]["file"].as_str().expect("file");
    assert!(text.contains(&format!("PROBLEM: {third}:")), "{text}");

    // Not a package at all: a clear error, exit 1.
    let junk = out.join("junk.zip");
    std::fs::write(&junk, b"not a zip").expect("write");
    let v = verify_package(&junk);
    assert_eq!(v.status.code(), Some(1));
    assert!(stderr(&v).contains("junk.zip"), "{}", stderr(&v));
}

#[test]
fn export_refuses_unknown_and_empty_cases_full_folders_and_synced_places() {
    let phone = phone_with_case("");
    let out = out_dir(&phone);
    let refused = |case: &str, target: &Path, needle: &str| {
        let o = phone.run(&["export", "--case", case, "--out", target.to_str().expect("utf-8")]);
        assert_eq!(o.status.code(), Some(1), "{case} -> {}: {}", target.display(), stdout(&o));
        assert!(stderr(&o).contains(needle), "{needle}: {}", stderr(&o));
    };
    refused("NO-SUCH-CASE", &out.join("x"), "no item has this case ID");
    // A case whose only item was released is empty.
    assert!(phone.run(&["session", "start", "--case", "C-2"]).status.success());
    phone.shoot("IMG_fp.jpg", 21);
    assert!(phone.run(&["scan"]).status.success());
    assert!(phone.run(&["session", "stop"]).status.success());
    let list = json(&phone.run(&["list", "--case", "C-2", "--json"]));
    let id = list[0]["id"].to_string();
    assert!(phone.run(&["release", &id, "--reason", "false positive"]).status.success());
    refused("C-2", &out.join("x"), "nothing to export");
    // A folder with something in it is never written over.
    let full = out.join("full");
    std::fs::create_dir_all(&full).expect("mkdir");
    std::fs::write(full.join("keep.txt"), b"mine").expect("write");
    refused("C-1", &full, "not empty");
    assert_eq!(std::fs::read(full.join("keep.txt")).expect("read"), b"mine");
    // Never into the camera folder, a synced folder, or a media-indexed one.
    refused("C-1", &phone.camera.join("pkg"), "refusing to write a case package");
    refused("C-1", &phone.dir.path().join("phone/DCIM/pkg.zip"), "Syncthing");
    let pictures = phone.dir.path().join("Pictures");
    std::fs::create_dir_all(&pictures).expect("mkdir");
    refused("C-1", &pictures.join("pkg"), "media-indexed folder Pictures");
    refused("C-1", &phone.store.join("pkg"), "inside the quarantine store");
    assert!(!phone.camera.join("pkg").exists() && !pictures.join("pkg").exists());
    // Refusals leave no trace and record nothing; an empty folder is fine.
    let empty = out.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    export(&phone, "C-1", &empty);
    assert!(empty.join("manifest.json").exists());
    let left: Vec<String> =
        std::fs::read_dir(&out).expect("ls").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert!(left.iter().all(|n| !n.starts_with(".fotovakt-partial")), "{left:?}");
    let o = phone.run(&["verify"]);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// A library agent over `phone` with these retention settings.
fn agent(phone: &Phone, retention: RetentionConfig) -> fotovakt::Agent {
    let config = fotovakt::Config {
        retention,
        classifier: fotovakt::classify::Settings { enabled: false, ..Default::default() },
        ..phone.config()
    };
    fotovakt::Agent::open(config).expect("agent")
}

/// Shoot `n` photos during a session of `case` and quarantine them.
fn shoot_case(phone: &Phone, a: &fotovakt::Agent, case: &str, seed: u64, n: u64) -> Vec<i64> {
    a.session_start(case, Some("ola"), None).expect("session");
    let mut ids = Vec::new();
    for i in 0..n {
        let p = phone.shoot(&format!("IMG_{case}_{i}.jpg"), seed + i);
        let o = common::handle(a, &p);
        assert_eq!(o.kind, fotovakt::OutcomeKind::Quarantined, "{o:?}");
        ids.push(o.item.expect("item"));
    }
    a.session_stop().expect("stop");
    ids
}

fn state_of(a: &fotovakt::Agent, id: i64) -> fotovakt::ledger::ItemState {
    a.ledger().item(id).expect("item").state
}

#[test]
fn purge_removes_only_what_is_due() {
    use fotovakt::ledger::ItemState;
    let phone = Phone::new();
    let settings = RetentionConfig { quarantined_days: 90, exported_days: 7, purge_unexported: false };
    let a = agent(&phone, settings.clone());
    let acked = shoot_case(&phone, &a, "A", 100, 2);
    let never_exported = shoot_case(&phone, &a, "B", 200, 1);
    let unacked = shoot_case(&phone, &a, "C", 300, 1);
    let out = out_dir(&phone);
    a.export("A", &out.join("A.zip"), Some("ola")).expect("export A");
    a.export("C", &out.join("C"), Some("ola")).expect("export C");
    a.ack("A", Some("case file clerk")).expect("ack A");
    assert!(a.ack("A", None).is_err(), "a second ack of the same export is refused");
    assert!(a.ack("B", None).expect_err("B was never exported").to_string().contains("nothing was exported"));
    let now = fotovakt::ledger::now_ms();

    // Now: nothing is due (exported_days = 7).
    let r = a.purge_at(now, false, None).expect("purge");
    assert!(r.items.is_empty(), "{r:?}");
    assert_eq!(phone.stored().len(), 4);

    // In 8 days: case A (exported and acknowledged) is due; B is not overdue yet; C unacknowledged.
    let in8 = now + 8 * DAY_MS;
    let d = retention::due(&a.ledger(), &settings, in8).expect("due");
    let due_ids: Vec<i64> = d.purge.iter().map(|x| x.item).collect();
    assert_eq!(due_ids, acked);
    assert!(d.purge.iter().all(|x| x.reason == Reason::Acknowledged));
    assert!(d.overdue.is_empty());
    let dry = a.purge_at(in8, true, None).expect("dry run");
    assert_eq!(dry.items.len(), 2);
    assert_eq!(phone.stored().len(), 4, "--dry-run removes nothing");
    assert!(acked.iter().all(|id| state_of(&a, *id) == ItemState::Quarantined));
    let r = a.purge_at(in8, false, Some("admin")).expect("purge");
    assert_eq!(r.items.len(), 2);
    assert!(r.failures.is_empty(), "{r:?}");
    assert_eq!(phone.stored().len(), 2);
    for id in &acked {
        let item = a.ledger().item(*id).expect("row kept");
        assert_eq!(item.state, ItemState::Purged);
        assert_eq!(item.sha256.len(), 64, "hash kept");
        let events = a.ledger().events_of(*id).expect("events");
        let kinds: Vec<&str> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.last(), Some(&"purge"), "{kinds:?}");
        assert!(kinds.contains(&"intake") && kinds.contains(&"export") && kinds.contains(&"ack"), "{kinds:?}");
        match &events.last().expect("purge").event {
            fotovakt::ledger::Event::Purged { officer, reason, .. } => {
                assert_eq!((officer.as_deref(), *reason), (Some("admin"), Reason::Acknowledged));
            }
            other => panic!("last event is not a purge: {other:?}"),
        }
    }
    let v = a.verify().expect("verify");
    assert!(v.problems.is_empty(), "purged items need no store file: {:?}", v.problems);

    // In 100 days B is overdue, but it was never exported: it stays unless the config says so.
    let in100 = now + 100 * DAY_MS;
    let s = retention::stats(&a.ledger(), &settings, in100).expect("stats");
    assert_eq!((s.overdue, s.exported, s.acknowledged, s.purged), (1, 1, 0, 2), "{s:?}");
    let days = s.oldest_overdue_days.expect("oldest");
    assert!((days - 10.0).abs() < 0.1, "{days}");
    let r = a.purge_at(in100, false, None).expect("purge");
    assert!(r.items.is_empty(), "never-exported items are not purged by default: {r:?}");
    assert_eq!(state_of(&a, never_exported[0]), ItemState::Quarantined);
    drop(a);

    let explicit = RetentionConfig { purge_unexported: true, ..settings };
    let a = agent(&phone, explicit);
    let r = a.purge_at(in100, false, None).expect("purge");
    assert_eq!(
        r.items.iter().map(|x| (x.item, x.reason)).collect::<Vec<_>>(),
        vec![(never_exported[0], Reason::Unexported)]
    );
    assert_eq!(state_of(&a, never_exported[0]), ItemState::Purged);
    // Exported but never acknowledged: kept however long it waits.
    let r = a.purge_at(now + 10_000 * DAY_MS, false, None).expect("purge");
    assert!(r.items.is_empty(), "{r:?}");
    assert_eq!(state_of(&a, unacked[0]), ItemState::Quarantined);
    assert_eq!(phone.stored().len(), 1);
    assert!(a.verify().expect("verify").problems.is_empty());
    // A purged item can no longer be exported, released or tagged.
    assert!(a.export("A", &out.join("again"), None).expect_err("empty").to_string().contains("nothing to export"));
    assert!(a.release(&acked[0].to_string(), "oops", None).is_err());
}

#[test]
fn verify_still_catches_a_missing_file_of_a_quarantined_item() {
    let phone = Phone::new();
    let a = agent(&phone, RetentionConfig { exported_days: 0, ..Default::default() });
    let ids = shoot_case(&phone, &a, "M", 400, 2);
    let e = a.export("M", &phone.camera.join("pkg"), None).expect_err("never into a camera folder");
    assert!(e.to_string().contains("inside the watched camera folder"), "{e}");
    a.export("M", &out_dir(&phone).join("m"), None).expect("export");
    a.ack("M", None).expect("ack");
    // Remove one file behind the agent's back, then purge: the other one is purged properly.
    let victim = a.ledger().item(ids[0]).expect("item").store_name.expect("name");
    std::fs::remove_file(phone.store.join(&victim)).expect("rm");
    let problems = a.verify().expect("verify").problems;
    assert!(
        problems.iter().any(|p| matches!(p, Problem::StoreFileUnreadable { item, .. } if *item == ids[0])),
        "{problems:?}"
    );
    let r = a.purge(false, None).expect("purge");
    assert_eq!(r.items.len(), 2, "{r:?}");
    assert!(a.verify().expect("verify").problems.is_empty());
    // A purge that died after marking an item but before removing its file is finished next time.
    let ids = shoot_case(&phone, &a, "N", 500, 1);
    let name = a.ledger().item(ids[0]).expect("item").store_name.expect("name");
    let keep = std::fs::read(phone.store.join(&name)).expect("read");
    a.export("N", &out_dir(&phone).join("n"), None).expect("export");
    a.ack("N", None).expect("ack");
    a.purge(false, None).expect("purge");
    std::fs::write(phone.store.join(&name), &keep).expect("put back as an interrupted purge would leave it");
    let problems = a.verify().expect("verify").problems;
    assert!(problems.iter().any(|p| matches!(p, Problem::UnaccountedStoreFile { .. })), "{problems:?}");
    let r = a.purge(false, None).expect("purge");
    assert_eq!(r.finished_earlier, 1, "{r:?}");
    assert!(a.verify().expect("verify").problems.is_empty());
}

#[test]
fn ack_purge_and_retention_stats_through_the_binary() {
    let phone = phone_with_case("[retention]\nquarantined_days = 0\nexported_days = 0\n");
    // A second case that is never exported.
    assert!(phone.run(&["session", "start", "--case", "C-9"]).status.success());
    phone.shoot("IMG_other.jpg", 31);
    assert!(phone.run(&["scan"]).status.success());
    assert!(phone.run(&["session", "stop"]).status.success());

    let s = json(&phone.run(&["stats", "--format", "json"]));
    assert_eq!(s["retention"]["overdue"], 4, "quarantined_days = 0: all overdue: {}", s["retention"]);
    assert!(s["retention"]["oldest_overdue_days"].as_f64().is_some());
    let metrics = stdout(&phone.run(&["stats", "--format", "openmetrics"]));
    assert!(metrics.contains("\nfotovakt_items_overdue 4\n"), "{metrics}");
    assert!(stdout(&phone.run(&["stats"])).contains("retention   overdue 4"));

    let o = phone.run(&["ack", "--case", "C-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing was exported yet"), "{}", stderr(&o));
    export(&phone, "C-1", &out_dir(&phone).join("c1.zip"));
    let s = json(&phone.run(&["stats", "--format", "json"]));
    assert_eq!((s["retention"]["overdue"].as_u64(), s["retention"]["exported"].as_u64()), (Some(1), Some(3)));

    // Exported but not acknowledged: not due.
    let r = json(&phone.run(&["purge", "--dry-run", "--json"]));
    assert_eq!(r["items"].as_array().map(Vec::len), Some(0), "{r}");
    let o = phone.run(&["ack", "--case", "C-1", "--officer", "clerk"]);
    assert!(o.status.success() && stdout(&o).contains("3 item(s)"), "{}", stdout(&o));
    let r = json(&phone.run(&["purge", "--dry-run", "--json"]));
    assert_eq!(r["items"].as_array().map(Vec::len), Some(3), "{r}");
    assert_eq!(phone.stored().len(), 4, "--dry-run removes nothing");

    let o = phone.run(&["purge"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("purged 3 item(s)"), "{}", stdout(&o));
    assert_eq!(phone.stored().len(), 1, "the never-exported C-9 item stays");
    assert_eq!(phone.in_camera(), vec!["IMG_personal.jpg"], "purging never puts anything back");
    let o = phone.run(&["verify"]);
    assert!(o.status.success(), "{}", stdout(&o));
    let all = json(&phone.run(&["list", "--all", "--json"]));
    assert_eq!(all.as_array().expect("items").iter().filter(|i| i["state"] == "purged").count(), 3);
    let s = json(&phone.run(&["stats", "--format", "json"]));
    assert_eq!(s["retention"]["purged"], 3);
    assert_eq!(s["retention"]["overdue"], 1);
    assert_eq!(s["items"]["aborted"], 0, "purged is not aborted");
    assert_eq!(s["store"]["files"], 1);
    assert!(stdout(&phone.run(&["stats", "--format", "openmetrics"])).contains("fotovakt_items_purged_total 3"));
    let r = json(&phone.run(&["purge", "--json"]));
    assert_eq!(r["items"].as_array().map(Vec::len), Some(0), "nothing left that is due: {r}");
}

#[test]
fn watch_warns_about_overdue_items_at_start() {
    let phone = phone_with_case("[retention]\nquarantined_days = 0\n");
    let log = phone.dir.path().join("watch.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("--store")
        .arg(&phone.store)
        .args(["--log-json", "watch", "--camera"])
        .arg(&phone.camera)
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("test-config.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn watch");
    let warned = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("retention: items are past their time"))
    });
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(warned, "{text}");
    let line: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["fields"]["message"].as_str().is_some_and(|m| m.starts_with("retention")))
        .expect("a JSON warning line");
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["fields"]["overdue"], 3, "{line}");
}

/// `verify-package` with extra arguments (trust, identity), offline as always.
fn verify_package_with(path: &Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("verify-package")
        .args(extra)
        .arg(path)
        .env("FOTOVAKT_CONFIG", "/nonexistent/fotovakt.toml")
        .env("NO_COLOR", "1")
        .output()
        .expect("run verify-package")
}

/// The phone's device key fingerprint, as `stats` shows it (what an admin registers).
fn fingerprint(phone: &Phone) -> String {
    let s = json(&phone.run(&["stats", "--format", "json"]));
    let f = s["device_key"]["fingerprint"].as_str().expect("stats names the device key").to_string();
    assert_eq!(s["device_key"]["algorithm"], "ed25519");
    assert_eq!(s["device_key"]["provider"], "key_file");
    assert!(stdout(&phone.run(&["stats"])).contains(&format!("device key  ed25519 {f} (key_file)")));
    f
}

#[test]
fn packages_are_signed_by_the_device_key_and_trust_names_the_keys_a_receiver_accepts() {
    let phone = phone_with_case("");
    let fp = fingerprint(&phone);
    assert_eq!(fp.len(), 64);
    // The key is the store's own: 0600 beside the ledger, recorded in the ledger when made.
    let key = phone.store.join("device.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).expect("key file").permissions().mode() & 0o777, 0o600);
    let zip = out_dir(&phone).join("C-1.zip");
    export(&phone, "C-1", &zip);
    let bytes = std::fs::read(&zip).expect("zip");
    let pem = std::fs::read_to_string(&key).expect("pem");
    let secret = pem.lines().nth(1).expect("base64 line");
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the private key never goes into a package");

    let v = verify_package_with(&zip, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stdout(&v).contains(&format!("signature: valid, device key {fp} (ed25519)")), "{}", stdout(&v));
    let j: serde_json::Value = serde_json::from_str(&stdout(&verify_package_with(&zip, &["--json"]))).expect("json");
    assert_eq!(j["signature"]["status"], "valid");
    assert_eq!(j["signature"]["fingerprint"], fp.as_str());

    // --trust: the registered fingerprint (as people write it) passes; any other fails.
    let v = verify_package_with(&zip, &["--trust", &format!("SHA256:{}", fp.to_uppercase())]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stdout(&v).contains("one of the 1 trusted key(s)"), "{}", stdout(&v));
    let other = "ab".repeat(32);
    let v = verify_package_with(&zip, &["--trust", &other]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(stdout(&v).contains(&format!("signed by device key {fp}, which is not among the trusted keys")));
    let file = phone.dir.path().join("trusted.txt");
    std::fs::write(&file, format!("# unit 4\n{other}  phone 7\n{fp}  phone 12\n")).expect("trust file");
    let v = verify_package_with(&zip, &["--trust-file", file.to_str().expect("utf-8")]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    let v = verify_package_with(&zip, &["--trust", "not-a-fingerprint"]);
    assert_eq!(v.status.code(), Some(2), "a bad fingerprint is bad usage: {}", stderr(&v));

    // The phone recorded who signed: the export events name the key, and a device_key event
    // the key itself, from when the store was made.
    let id = json(&phone.run(&["list", "--case", "C-1", "--json"]))[0]["id"].to_string();
    let show = json(&phone.run(&["show", &id, "--json"]));
    let export = show["events"].as_array().expect("events").iter().find(|e| e["kind"] == "export").expect("export");
    assert_eq!(export["data"]["signer"], fp.as_str());
    let a = fotovakt::Agent::open_without_model(phone.config()).expect("agent");
    let keys = a.ledger().events_of_kind("device_key").expect("keys");
    assert!(
        matches!(&keys[..], [(1, _, fotovakt::ledger::Event::DeviceKey { fingerprint, reason: fotovakt::ledger::KeyReason::NewStore, .. })] if *fingerprint == fp),
        "{keys:?}"
    );
}

#[test]
fn an_encrypted_package_opens_only_with_its_receivers_identity_and_never_lies_on_disk_in_plaintext() {
    let phone = phone_with_case("");
    let receiver = age::x25519::Identity::generate();
    let stranger = age::x25519::Identity::generate();
    let keys = phone.dir.path().join("keys");
    std::fs::create_dir_all(&keys).expect("keys");
    let write_identity = |name: &str, id: &age::x25519::Identity| {
        use age::secrecy::ExposeSecret;
        let p = keys.join(name);
        std::fs::write(&p, format!("# created: test\n{}\n", id.to_string().expose_secret())).expect("identity");
        p
    };
    let mine = write_identity("receiver.txt", &receiver);
    let theirs = write_identity("stranger.txt", &stranger);
    let out = out_dir(&phone);
    let sealed = out.join("C-1.zip.age");
    let to = receiver.to_public().to_string();
    let o = phone.run(&["export", "--case", "C-1", "--out", sealed.to_str().expect("utf-8"), "--to", &to, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json(&o);
    assert_eq!(report["format"], "age");
    assert_eq!(report["recipients"][0], to.as_str());
    assert_eq!(report["sealed_sha256"], sha256(&sealed).as_str(), "the ledger names the encrypted file as it travels");

    // Nothing readable: the file is age's binary format, no zip entry name or JPEG marker in it,
    // and no plaintext (partial or whole) was left beside it.
    let bytes = std::fs::read(&sealed).expect("read");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n-> X25519 "), "{:?}", &bytes[..40]);
    for needle in [&b"manifest.json"[..], b"custody.json", b"PK\x03\x04", b"\xff\xd8\xff"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{needle:?} in the ciphertext");
    }
    let left: Vec<String> =
        std::fs::read_dir(&out).expect("ls").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(left, vec!["C-1.zip.age".to_string()]);

    // Only the receiver opens it; then every check runs as for a plain zip, signature included.
    let v = verify_package_with(&sealed, &[]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stderr(&v).contains("open it with --identity"), "{}", stderr(&v));
    let v = verify_package_with(&sealed, &["--identity", theirs.to_str().expect("utf-8")]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stderr(&v).contains("cannot be opened with this identity file"), "{}", stderr(&v));
    let fp = fingerprint(&phone);
    let v = verify_package_with(&sealed, &["--identity", mine.to_str().expect("utf-8"), "--trust", &fp]);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
    let text = stdout(&v);
    assert!(text.starts_with("OK: case C-1: 3 files"), "{text}");
    assert!(text.contains("one of the 1 trusted key(s)") && text.contains("encrypted to its receiver"), "{text}");
    let id = json(&phone.run(&["list", "--case", "C-1", "--json"]))[0]["id"].to_string();
    let show = json(&phone.run(&["show", &id, "--json"]));
    let e = show["events"].as_array().expect("events").iter().find(|e| e["kind"] == "export").expect("export");
    assert_eq!((e["data"]["format"].as_str(), e["data"]["recipients"][0].as_str()), (Some("age"), Some(to.as_str())));

    // Refused: recipients with a plain name, a .age name without recipients, a bad recipient.
    let o =
        phone.run(&["export", "--case", "C-1", "--out", out.join("plain.zip").to_str().expect("utf-8"), "--to", &to]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("name it NAME.zip.age"), "{}", stderr(&o));
    let o = phone.run(&["export", "--case", "C-1", "--out", out.join("x.zip.age").to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("encrypted to its receivers"), "{}", stderr(&o));
    let o = phone.run(&[
        "export",
        "--case",
        "C-1",
        "--out",
        out.join("y.zip.age").to_str().expect("utf-8"),
        "--to",
        "age1nope",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let left: Vec<String> =
        std::fs::read_dir(&out).expect("ls").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert_eq!(left, vec!["C-1.zip.age".to_string()], "refusals leave nothing");
}

#[test]
fn a_package_from_before_signing_still_verifies_as_unsigned() {
    let old = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ledger-v1/C-1.zip");
    let v = verify_package_with(&old, &[]);
    assert_eq!(v.status.code(), Some(0), "{}", stdout(&v));
    assert!(stdout(&v).contains("signature: none"), "{}", stdout(&v));
    let j: serde_json::Value = serde_json::from_str(&stdout(&verify_package_with(&old, &["--json"]))).expect("json");
    assert_eq!(j["signature"]["status"], "unsigned");
    let v = verify_package_with(&old, &["--trust", &"ab".repeat(32)]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(stdout(&v).contains("the package is not signed"), "{}", stdout(&v));
}
