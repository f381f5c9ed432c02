//! The CLI contract: officers' and admins' commands through the real binary.

mod common;

use common::{stderr, stdout, Phone};
use fotovakt::sample::SamplePhoto;

fn phone_with_history() -> Phone {
    let phone = Phone::new();
    let gps_photo = SamplePhoto { seed: 5, gps: Some((59.9127, 10.7461)), ..Default::default() }.jpeg();
    fotovakt::sample::write_like_android(&phone.camera, "IMG_personal.jpg", &gps_photo).expect("write");
    assert!(phone.run(&["scan"]).status.success());
    let o = phone.run(&["session", "start", "--case", "SECRET-CASE-77", "--for", "2h", "--officer", "bo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("open for case SECRET-CASE-77 until"), "{}", stdout(&o));
    for i in 0..3 {
        phone.shoot(&format!("IMG_case{i}.jpg"), 30 + i);
    }
    let o = phone.run(&["scan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("quarantined 3"), "{}", stdout(&o));
    phone
}

#[test]
fn sessions_open_show_and_close() {
    let phone = phone_with_history();
    let s = phone.run(&["session", "status"]);
    assert!(stdout(&s).contains("open for case SECRET-CASE-77"), "{}", stdout(&s));
    let s = phone.run(&["session", "stop"]);
    assert!(stdout(&s).contains("closed"), "{}", stdout(&s));
    let s = phone.run(&["session", "status"]);
    assert!(stdout(&s).contains("no session open"), "{}", stdout(&s));
    // Opening a session while one is open closes that one, and says so.
    assert!(phone.run(&["session", "start", "--case", "A-1"]).status.success());
    let s = phone.run(&["session", "start", "--case", "B-2"]);
    assert!(s.status.success(), "{}", stderr(&s));
    assert!(stdout(&s).contains("for case A-1 closed (replaced)") && stdout(&s).contains("open for case B-2"));
    assert!(stdout(&phone.run(&["session", "stop"])).contains("for case B-2 closed"));
    phone.shoot("IMG_after.jpg", 99);
    assert!(phone.run(&["scan"]).status.success());
    assert!(phone.camera.join("IMG_after.jpg").exists(), "after the session: kept");
}

#[test]
fn stats_have_the_documented_keys_and_no_names_gps_or_case_ids() {
    let phone = phone_with_history();
    let o = phone.run(&["stats", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    for key in [
        "generated_at_ms",
        "items",
        "per_day",
        "decisions",
        "rejected",
        "exposure_ms",
        "store",
        "cases",
        "session_open",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(v["items"]["seen"], 4);
    assert_eq!(v["items"]["quarantined"], 3);
    assert_eq!(v["items"]["kept"], 1);
    assert_eq!(v["decisions"]["session"]["quarantine"], 3);
    assert_eq!(v["exposure_ms"]["count"], 3);
    assert!(v["exposure_ms"]["p50"].as_i64().is_some() && v["exposure_ms"]["p95"].as_i64().is_some());
    assert_eq!(v["store"]["files"], 3);
    assert_eq!(v["cases"]["count"], 1);
    assert_eq!(v["cases"]["items_per_case_max"], 3);
    for secret in ["IMG_", "SECRET-CASE", "59.91", "10.74", "Camera", "bo\""] {
        assert!(!text.contains(secret), "stats leak {secret:?}: {text}");
    }
    let by_case = stdout(&phone.run(&["stats", "--format", "json", "--by-case"]));
    assert!(by_case.contains("SECRET-CASE-77"), "--by-case names the case");
    let table = stdout(&phone.run(&["stats"]));
    assert!(table.contains("quarantined 3") && !table.contains("SECRET"), "{table}");
}

#[test]
fn openmetrics_follows_the_exposition_format() {
    let phone = phone_with_history();
    let text = stdout(&phone.run(&["stats", "--format", "openmetrics"]));
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut typed = std::collections::HashSet::new();
    let mut helped = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            typed.insert(p.next().expect("name").to_string());
            assert!(matches!(p.next(), Some("gauge" | "counter" | "histogram")), "{line}");
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().expect("name").to_string());
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
        } else {
            let (name_labels, value) = line.rsplit_once(' ').expect("sample has a value");
            let name = name_labels.split('{').next().expect("name");
            let family = ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                .unwrap_or(name);
            assert!(typed.contains(family) && helped.contains(family), "sample {line} before its TYPE/HELP");
            assert!(value == "NaN" || value.parse::<f64>().is_ok(), "{line}");
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
        }
    }
    assert!(text.contains("fotovakt_items{state=\"quarantined\"} 3"), "{text}");
    assert!(text.contains("fotovakt_decisions{source=\"session\",action=\"quarantine\"} 3"), "{text}");
    assert!(text.contains("fotovakt_exposure_seconds_count 3"), "{text}");
}

#[test]
fn list_and_show_tell_the_custody_story() {
    let phone = phone_with_history();
    let list = stdout(&phone.run(&["list"]));
    assert_eq!(list.lines().count(), 4, "header + 3 quarantined: {list}");
    let all = stdout(&phone.run(&["list", "--all", "--json"]));
    let items: serde_json::Value = serde_json::from_str(&all).expect("json");
    assert_eq!(items.as_array().map(Vec::len), Some(4));
    let personal = items.as_array().and_then(|a| a.iter().find(|i| i["state"] == "kept")).expect("kept item");
    assert!(personal["gps"].is_array(), "EXIF GPS recorded for the ledger: {personal}");
    let id = items[0]["id"].as_i64().expect("id").to_string();
    let show = stdout(&phone.run(&["show", &id]));
    for needle in
        ["sha256", "original", "decision   quarantine by session", "custody log:", "intake", "decided", "quarantined"]
    {
        assert!(show.contains(needle), "{needle}: {show}");
    }
    let o = phone.run(&["show", "zz"]);
    assert_eq!(o.status.code(), Some(1));
}

/// `scan` of a camera folder that is not there says so and fails; the others are scanned.
#[test]
fn scan_of_a_missing_camera_folder_is_an_error_not_nothing_new() {
    let phone = Phone::new();
    phone.shoot("IMG_there.jpg", 5);
    let missing = phone.dir.path().join("phone/DCIM/Kamera");
    let o = phone.run(&["scan", "--camera", missing.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("cannot read camera folder") && stderr(&o).contains("Kamera"), "{}", stderr(&o));
    assert!(stdout(&o).contains("kept 1"), "the real camera folder was still scanned: {}", stdout(&o));
}

#[test]
fn help_and_version_work() {
    let phone = Phone::new();
    let o = phone.run(&["--help"]);
    assert!(o.status.success());
    for cmd in [
        "watch",
        "scan",
        "tag",
        "release",
        "session",
        "list",
        "show",
        "stats",
        "verify",
        "classify",
        "demo",
        "report",
        "serve-metrics",
    ] {
        assert!(stdout(&o).contains(cmd), "{cmd} in --help");
    }
    assert!(phone.run(&["--version"]).status.success());
}

#[test]
fn classify_prints_one_json_object_per_file_and_moves_nothing() {
    let phone = Phone::new();
    let good = phone.shoot("IMG_c1.jpg", 8);
    let bad = phone.camera.join("IMG_broken.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 not really a jpeg").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .args(["classify", "--json"])
        .arg(&good)
        .arg(&bad)
        .env("FOTOVAKT_CONFIG", "/dev/null")
        .output()
        .expect("run");
    if stderr(&out).contains("ONNX Runtime not found") {
        eprintln!("SKIP: ONNX Runtime is not installed (scripts/test installs it): {}", stderr(&out));
        return;
    }
    assert_eq!(out.status.code(), Some(1), "one file failed: {}", stderr(&out));
    let lines: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&out));
    let v = &lines[0];
    assert_eq!(v["path"], good.to_string_lossy().as_ref());
    assert_eq!(v["sha256"], common::sha256(&good));
    let score = v["case_score"].as_f64().expect("score");
    assert!((0.0..=1.0).contains(&score), "{v}");
    assert!(v["case"].is_boolean());
    let labels = v["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), 3, "top-3 ImageNet labels: {v}");
    assert!(labels.iter().all(|l| l["label"].is_string() && l["p"].as_f64().is_some()));
    assert!(v["decode_ms"].as_f64().is_some() && v["infer_ms"].as_f64().is_some());
    assert!(lines[1]["error"].as_str().is_some_and(|e| e.contains("IMG_broken.jpg")), "{}", lines[1]);
    assert!(good.exists() && bad.exists(), "classify moves nothing");
    assert!(!phone.store.exists(), "classify does not even open a store");
}

/// The README's first command, end to end: the real watcher, agent, ledger and hand-off.
#[test]
fn demo_runs_the_whole_story_and_keeps_its_tree_when_asked() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .args(["demo", "--keep"])
        .env("FOTOVAKT_CONFIG", "/dev/null")
        .output()
        .expect("run demo");
    let text = stdout(&out);
    assert!(out.status.success(), "demo failed: {}\n{text}", stderr(&out));
    let kept = text.lines().find_map(|l| l.strip_prefix("kept the demo tree at ")).expect("kept tree line");
    let tree = std::path::PathBuf::from(kept.trim());
    let cleanup = scopeguard(&tree);
    assert!(text.contains("1. A store inside the synced folder is refused:\n   error:"), "{text}");
    // The session's three photos, the work-site photo and the tagged one; the package holds
    // the three with the case ID (the work-site photo has none yet).
    assert_eq!(text.matches("QUARANTINED").count(), 5, "{text}");
    assert!(text.contains("released"), "{text}");
    assert!(text.contains("   OK: ") && text.contains("stored files verified"), "{text}");
    assert!(text.contains("verify-package OK: 3 files re-hashed"), "{text}");
    let package = tree.join("handoff/TOLL-2026-0142.zip");
    let report = std::fs::read_to_string(tree.join("report.html")).expect("report written");
    assert!(report.contains("<svg") && !report.contains("http://") && !report.contains("https://"));
    // The receiver's own check, from the binary, agrees.
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("verify-package")
        .arg(&package)
        .output()
        .expect("verify-package");
    assert!(v.status.success() && stdout(&v).starts_with("OK: case TOLL-2026-0142: 3 files"), "{}", stdout(&v));
    // Only the released photo is left in the camera folder.
    let left = text.lines().find_map(|l| l.trim().strip_prefix("camera folder now holds: ")).expect("left line");
    assert_eq!(left.split(", ").count(), 1, "{left}");
    drop(cleanup);
}

/// Removes the demo tree when the test ends, pass or fail.
fn scopeguard(tree: &std::path::Path) -> impl Drop + '_ {
    struct Rm<'a>(&'a std::path::Path);
    impl Drop for Rm<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    Rm(tree)
}
