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
    // The personal photo has no item: only a keyed record (issue 29), never listed.
    assert_eq!(items.as_array().map(Vec::len), Some(3), "{items}");
    assert!(items.as_array().expect("items").iter().all(|i| i["state"] == "quarantined"), "{items}");
    assert!(!all.contains("IMG_personal"), "{all}");
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
/// A request the agent declines (a typed refusal) is one line with the refusal's text and
/// exit 1, with nothing changed; a scan whose every file was settled exits 0.
#[test]
fn refused_officer_requests_are_one_line_and_exit_1() {
    let phone = phone_with_history();
    let list = stdout(&phone.run(&["list", "--json"]));
    let items: serde_json::Value = serde_json::from_str(&list).expect("json");
    let item = items[0]["id"].to_string();
    for (args, text) in [
        (vec!["release", item.as_str(), "--reason", " "], "a reason is required to release an item"),
        (vec!["tag", item.as_str(), "--case", "  "], "a case ID is required"),
        (vec!["ack", "--case", "SECRET-CASE-77"], "nothing was exported yet"),
    ] {
        let o = phone.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().filter(|l| l.starts_with("fotovakt: ")).count(), 1, "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err}");
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
    }
    assert_eq!(stdout(&phone.run(&["list", "--json"])), list, "nothing changed");
    let o = phone.run(&["scan"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

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
        common::skip(format!("ONNX Runtime is not installed (scripts/test installs it): {}", stderr(&out)));
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
    // the three with the case ID (the work-site photo has none yet). With ONNX Runtime
    // present (scripts/test installs it) the classifier also decides the four real photos of
    // step 3: two quarantined, two kept, each line with its score and the threshold.
    let with_model = text.contains("on-device classifier loaded");
    if with_model {
        assert_eq!(text.matches("QUARANTINED classifier case score").count(), 2, "{text}");
        assert_eq!(text.matches("kept        classifier case score").count(), 2, "{text}");
        assert!(text.contains("< threshold") && text.contains("≥ threshold"), "{text}");
    } else {
        // Said once, with the fix, not on every photo line.
        let said = text.matches("ONNX Runtime is not installed").count();
        assert!(said == 1 || text.contains("classifier unavailable ("), "said {said} times: {text}");
    }
    assert_eq!(text.matches("QUARANTINED").count(), if with_model { 7 } else { 5 }, "{text}");
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
    // Only the released photo is left in the camera folder, and with the classifier the
    // photo it kept and nobody tagged (the coffee cup).
    let left = text.lines().find_map(|l| l.trim().strip_prefix("camera folder now holds: ")).expect("left line");
    let mut left: Vec<&str> = left.split(", ").collect();
    left.sort_unstable();
    let expected: &[&str] = if with_model {
        &["IMG_20261122_142200.jpg", "IMG_20261123_100302.jpg"]
    } else {
        &["IMG_20261122_142200.jpg", "IMG_20261122_143100.jpg", "IMG_20261122_144000.jpg", "IMG_20261123_100302.jpg"]
    };
    assert_eq!(left, expected);
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

/// The binary with `--store` and the test config, and nothing added: no `--camera`.
fn bare(phone: &Phone, args: &[&str]) -> std::process::Command {
    let mut cmd = phone.command(&[], &[]);
    cmd.args(args);
    cmd
}

/// Files under `dir`, recursively (an empty HOME must stay empty).
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        if e.path().is_dir() {
            out.extend(files_in(&e.path()));
        }
    }
    out
}

/// One-shot commands print warnings and errors only, `-v` adds INFO; `watch` logs INFO by
/// default; no colour codes when stderr is a file, even with NO_COLOR unset.
#[test]
fn logs_are_quiet_by_default_louder_with_v_and_never_coloured_into_a_file() {
    let phone = Phone::new();
    phone.shoot("IMG_1.jpg", 1);
    let o = phone.command(&["scan"], &[]).env_remove("FOTOVAKT_LOG").output().expect("scan");
    assert!(o.status.success(), "{}", stderr(&o));
    let created = format!("fotovakt: created a new store at {}\n", phone.store.display());
    assert_eq!(stderr(&o), created, "the new store is named once, and nothing else is said");
    phone.shoot("IMG_2.jpg", 2);
    let o = phone.command(&["scan"], &[]).env_remove("FOTOVAKT_LOG").output().expect("scan");
    assert!(o.status.success() && stdout(&o).contains("kept 1"), "{}", stdout(&o));
    assert_eq!(stderr(&o), "", "a clean scan says nothing on stderr");
    phone.shoot("IMG_3.jpg", 3);
    let o = phone.command(&["scan", "-v"], &[]).env_remove("FOTOVAKT_LOG").output().expect("scan -v");
    assert!(stderr(&o).contains("INFO") && stderr(&o).contains("decided"), "-v is INFO: {}", stderr(&o));
    assert!(!stderr(&o).contains("DEBUG"), "{}", stderr(&o));

    let log = phone.dir.path().join("watch.log");
    let mut child = phone
        .command(&["watch"], &[])
        .env_remove("FOTOVAKT_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("watch");
    let watching = common::wait_until(std::time::Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("watching"))
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().expect("wait").success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(watching, "watch logs INFO by default: {text}");
    assert!(text.contains("INFO") && !text.contains('\u{1b}'), "no ANSI codes in a file: {text:?}");
}

/// `stats` and the other read-only commands never make a store: with no configuration and
/// an empty HOME they refuse, naming the path they looked at, and HOME stays empty.
#[test]
fn read_only_commands_refuse_a_store_that_does_not_exist() {
    let phone = Phone::new();
    let home = phone.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"))
        .arg("stats")
        .env("HOME", &home)
        .env_remove("FOTOVAKT_CONFIG")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("stats");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let default = home.join(".local/share/fotovakt/store");
    let err = stderr(&o);
    assert!(err.starts_with(&format!("fotovakt: no store at {} (", default.display())), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(stdout(&o), "");
    assert_eq!(files_in(&home), Vec::<std::path::PathBuf>::new(), "nothing created in HOME");

    let out = phone.dir.path().join("out");
    let report = phone.dir.path().join("r.html");
    for args in [
        vec!["stats", "--format", "json"],
        vec!["list"],
        vec!["show", "1"],
        vec!["verify", "--json"],
        vec!["report", "--out", report.to_str().expect("utf8")],
        vec!["export", "--case", "C-1", "--out", out.to_str().expect("utf8")],
        vec!["release", "1", "--reason", "x"],
        vec!["purge", "--dry-run"],
    ] {
        let o = phone.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim_end(),
            format!(
                "fotovakt: no store at {} (from --store); only `watch`, `scan`, `tag` and `session` create one",
                phone.store.display()
            ),
            "{args:?}"
        );
        assert!(!phone.store.exists() && !report.exists() && !out.exists(), "{args:?} created something");
    }
    // `session` does create one, and says so once.
    let o = phone.run(&["session", "status"]);
    assert!(o.status.success() && stderr(&o).contains("created a new store at"), "{}", stderr(&o));
    let o = phone.run(&["session", "status"]);
    assert!(o.status.success() && stderr(&o).is_empty(), "{}", stderr(&o));
    // Now it exists: --json names the store read.
    let v: serde_json::Value = serde_json::from_str(&stdout(&phone.run(&["verify", "--json"]))).expect("json");
    assert_eq!(v["store"], phone.store.to_string_lossy().as_ref(), "{v}");
    assert!(v["problems"].as_array().is_some_and(Vec::is_empty), "{v}");
}

/// On a terminal, a read-only command names the store it read (on stderr).
#[test]
fn on_a_terminal_the_store_read_is_named() {
    let phone = Phone::new();
    assert!(phone.run(&["session", "status"]).status.success());
    if std::process::Command::new("script").arg("--version").output().is_err() {
        common::skip("no `script` (util-linux) to give the command a terminal");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_fotovakt");
    let line = format!("{bin} --store '{}' stats", phone.store.display());
    let o = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("FOTOVAKT_CONFIG", phone.dir.path().join("test-config.toml"))
        .env("NO_COLOR", "1")
        .output()
        .expect("script");
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains(&format!("fotovakt: store {}", phone.store.display())), "{}", stdout(&o));
    assert!(stdout(&o).contains("seen"), "{}", stdout(&o));
}

/// A camera folder that is not there: `watch` exits 2 before it opens anything, unless told
/// to wait; `scan` says so in one line.
#[test]
fn a_missing_camera_folder_is_one_clear_line() {
    let phone = Phone::new();
    let missing = phone.dir.path().join("phone/DCIM/Kamera");
    let m = missing.to_str().expect("utf8");
    let o = bare(&phone, &["watch", "--camera", m]).output().expect("watch");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.starts_with(&format!("fotovakt: camera folder {m} does not exist")), "{err}");
    assert!(err.contains("--wait-for-cameras") && err.lines().count() == 1, "{err}");
    assert!(!phone.store.exists(), "checked before the store is opened");

    let o = bare(&phone, &["scan", "--camera", m]).output().expect("scan");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o), format!("fotovakt: cannot read camera folder {m}: No such file or directory\n"));
    assert_eq!(stdout(&o), "", "no `scanned 0 files: nothing new`");
    assert!(!phone.store.exists());

    // Told to wait (flag or config key), it waits, and picks the folder up when it appears.
    let cfg = phone.dir.path().join("wait.toml");
    std::fs::write(&cfg, "wait_for_cameras = true\n[classifier]\nenabled = false\n").expect("cfg");
    for extra in [vec!["--wait-for-cameras"], vec![]] {
        let mut cmd = bare(&phone, &["watch", "--camera", m]);
        cmd.args(&extra).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        if extra.is_empty() {
            cmd.env("FOTOVAKT_CONFIG", &cfg);
        }
        let mut child = cmd.spawn().expect("watch");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert!(child.try_wait().expect("try_wait").is_none(), "{extra:?}: still waiting");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert!(child.wait().expect("wait").success(), "{extra:?}");
    }
}

/// `classify`: one line per file that cannot be scored, with the real reason; no table
/// header before a failure, no log line repeating it, no talk of decisions; long paths are
/// cut in the middle so the columns hold.
#[test]
fn classify_gives_one_clear_line_per_problem_and_a_table_that_fits() {
    let phone = Phone::new();
    let text = phone.dir.path().join("notes.txt");
    std::fs::write(&text, "just some words\n").expect("write");
    let broken = phone.camera.join("IMG_broken.jpg");
    std::fs::write(&broken, b"\xff\xd8\xff\xe0 not really a jpeg").expect("write");
    let nowhere = phone.dir.path().join("nonexistent.jpg");
    let run = |args: &[&std::path::Path], v: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fotovakt"));
        cmd.env("FOTOVAKT_CONFIG", "/dev/null").env_remove("FOTOVAKT_LOG").env_remove("NO_COLOR");
        cmd.args(if v { vec!["-v", "classify"] } else { vec!["classify"] }).args(args);
        cmd.output().expect("classify")
    };
    let o = run(&[&nowhere, &text, &broken], false);
    if stderr(&o).contains("ONNX Runtime not found") {
        common::skip(format!("ONNX Runtime is not installed (scripts/test installs it): {}", stderr(&o)));
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "no table header when nothing could be scored");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "one line per file: {err}");
    assert_eq!(lines[0], format!("fotovakt: {}: No such file or directory", nowhere.display()));
    assert_eq!(lines[1], format!("fotovakt: {}: not an image: unknown format", text.display()));
    assert!(lines[2].starts_with(&format!("fotovakt: {}: ", broken.display())), "{err}");
    assert!(!err.contains("vanished") && !err.contains("decided") && !err.contains("WARN"), "{err}");

    // A photo at a long path: the row keeps the columns of the header.
    let deep = phone.dir.path().join("a-rather-long-folder-name/and-another-long-one/and-a-third");
    std::fs::create_dir_all(&deep).expect("mkdir");
    let photo = deep.join("IMG_20261201_120000_with_a_long_name.jpg");
    std::fs::copy(phone.shoot("IMG_src.jpg", 4), &photo).expect("copy");
    let o = run(&[&photo], true);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let rows: Vec<Vec<char>> = table.lines().map(|l| l.chars().collect()).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let score_end = table.lines().next().and_then(|h| h.find("score")).expect("score column") + "score".len();
    let cell: String = rows[1][score_end - 6..score_end].iter().collect();
    assert!(cell.trim().parse::<f64>().is_ok(), "score under its header: {table}");
    assert!(table.contains('…') && table.contains("long_name.jpg"), "cut in the middle: {table}");
    // Numbers in the log as a person writes them.
    let err = stderr(&o);
    let t = err.split("threshold=").nth(1).and_then(|r| r.split_whitespace().next()).expect("threshold logged");
    assert!(t.len() <= 4 && t.parse::<f64>().is_ok(), "threshold={t}: {err}");
}

/// `--help` groups the commands by who uses them; every option of every command says what
/// it does; `-h` is the short form.
#[test]
fn help_is_grouped_and_every_option_is_described() {
    let phone = Phone::new();
    let long = stdout(&phone.run(&["--help"]));
    let short = stdout(&phone.run(&["-h"]));
    let (service, officers, admins) = (
        long.find("Service").expect("service"),
        long.find("Officers:").expect("officers"),
        long.find("Admins:").expect("admins"),
    );
    assert!(service < officers && officers < admins, "{long}");
    assert!(long[service..officers].contains("  watch ") && long[officers..admins].contains("  tag "), "{long}");
    assert!(long[admins..].contains("  stats ") && long[admins..].contains("  verify "), "{long}");
    assert!(short.len() < long.len() && short.contains("Officers:"), "{short}");
    let scan = stdout(&phone.run(&["scan", "--help"]));
    let camera = scan.lines().position(|l| l.trim_start().starts_with("--camera <DIR>")).expect("--camera");
    let described = scan.lines().nth(camera).is_some_and(|l| l.trim().len() > "--camera <DIR>".len())
        || scan.lines().nth(camera + 1).is_some_and(|l| !l.trim().is_empty() && !l.trim_start().starts_with('-'));
    assert!(described, "--camera has a description: {scan}");
    assert!(stdout(&phone.run(&["watch", "--help"])).contains("--wait-for-cameras"));
    // Every argument of every (sub)command carries help text.
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if id != "help" && id != "version" && a.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sc in cmd.get_subcommands() {
            if sc.get_about().is_none() {
                missing.push(format!("{path} {} (about)", sc.get_name()));
            }
            walk(sc, &format!("{path} {}", sc.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&fotovakt::cli::command(), "fotovakt", &mut missing);
    missing.retain(|m| !m.ends_with(" help (about)") && !m.contains(" help "));
    assert_eq!(missing, Vec::<String>::new(), "arguments without help text");
}
