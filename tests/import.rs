//! `fotovakt import --case ID PATH...` (issue 25, item 6): evidence from a dedicated camera's
//! SD card into a case, through the same "import a file into a case" path as the Android case
//! camera. Real binary, real SQLite, real JPEGs with a camera's EXIF.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use common::{sha256, stderr, stdout, Phone};
use fotovakt::sample::SamplePhoto;

/// A real JPEG with an EXIF block naming the camera (IFD0 Make, Model, DateTime), as a
/// dedicated camera writes it.
fn camera_jpeg(seed: u64, make: &str, model: &str, time: &str) -> Vec<u8> {
    let jpeg = SamplePhoto { seed, width: 320, height: 240, ..SamplePhoto::default() }.jpeg();
    let entries = [(0x010Fu16, make), (0x0110, model), (0x0132, time)];
    let mut data_at = 8 + 2 + entries.len() * 12 + 4;
    let (mut ifd, mut data) = (Vec::new(), Vec::new());
    ifd.extend((entries.len() as u16).to_le_bytes());
    for (tag, text) in entries {
        let mut v = text.as_bytes().to_vec();
        v.push(0);
        ifd.extend(tag.to_le_bytes());
        ifd.extend(2u16.to_le_bytes());
        ifd.extend((v.len() as u32).to_le_bytes());
        ifd.extend((data_at as u32).to_le_bytes());
        data_at += v.len();
        data.extend(v);
    }
    ifd.extend(0u32.to_le_bytes());
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(ifd);
    tiff.extend(data);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// An SD card as a dedicated camera leaves it: DCIM/100CANON with photos and a clip, a file
/// the camera broke (written as garbage), the camera's own MISC folder, and macOS's litter.
struct Card {
    root: PathBuf,
    good: Vec<(PathBuf, String)>,
    broken: PathBuf,
}

fn card(dir: &Path) -> Card {
    let root = dir.join("card");
    let shots = root.join("DCIM/100CANON");
    std::fs::create_dir_all(&shots).expect("card");
    std::fs::create_dir_all(root.join("MISC")).expect("misc");
    std::fs::create_dir_all(root.join(".Trashes")).expect("trash");
    let mut good = Vec::new();
    for (i, name) in ["IMG_0001.JPG", "IMG_0002.JPG"].iter().enumerate() {
        let p = shots.join(name);
        let time = format!("2026:12:01 09:30:0{i}");
        std::fs::write(&p, camera_jpeg(i as u64 + 1, "Canon", "Canon EOS R6", &time)).expect("photo");
        good.push((p.clone(), sha256(&p)));
    }
    let clip = shots.join("MVI_0003.MP4");
    let mut mp4 = vec![0, 0, 0, 0x18];
    mp4.extend(b"ftypisom\0\0\x02\0isomiso2");
    mp4.extend((0..200_000u32).flat_map(|i| i.to_le_bytes()));
    std::fs::write(&clip, mp4).expect("clip");
    good.push((clip.clone(), sha256(&clip)));
    let broken = shots.join("IMG_0004.JPG");
    std::fs::write(&broken, b"\x00\x00 the card was pulled while this was written").expect("broken");
    std::fs::write(root.join("MISC/AUTPLAY0.MRK"), b"[DPOF]").expect("misc");
    std::fs::write(shots.join("._IMG_0001.JPG"), b"\x00\x05\x16\x07 AppleDouble").expect("appledouble");
    Card { root, good, broken }
}

fn json_items(phone: &Phone, case: &str) -> Vec<serde_json::Value> {
    let out = phone.run(&["list", "--case", case, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json").as_array().expect("array").clone()
}

#[test]
fn an_sd_card_with_a_broken_file_is_imported_file_by_file_and_left_untouched() {
    let phone = Phone::new();
    let card = card(phone.dir.path());
    let root = card.root.to_string_lossy().into_owned();
    let out = phone.run(&["import", "--case", "C-9", "--officer", "anna", &root]);
    // One clear line for the broken file, the rest imported, exit 1 for the failure.
    assert_eq!(out.status.code(), Some(1), "{}\n{}", stdout(&out), stderr(&out));
    let err_text = stderr(&out);
    let err_lines: Vec<&str> =
        err_text.lines().filter(|l| l.starts_with("fotovakt:") && !l.contains("created a new store")).collect();
    assert_eq!(err_lines.len(), 1, "{}", stderr(&out));
    assert!(err_lines[0].contains("IMG_0004.JPG") && err_lines[0].contains("not a photo or video"), "{err_lines:?}");
    assert!(stdout(&out).contains("imported 3 file(s) into case C-9, 1 failed"), "{}", stdout(&out));
    // The card is untouched.
    for (p, sha) in &card.good {
        assert_eq!(&sha256(p), sha, "{p:?} unchanged");
    }
    assert!(card.broken.exists());
    // Three items of the case, verified in the store, with their custody events.
    let items = json_items(&phone, "C-9");
    assert_eq!(items.len(), 3, "{items:?}");
    let stored: Vec<String> = phone.stored().iter().map(|p| sha256(p)).collect();
    for (p, sha) in &card.good {
        assert!(stored.contains(sha), "{p:?} in the store");
    }
    let first = items.iter().find(|i| i["original_path"].as_str().is_some_and(|s| s.ends_with("IMG_0001.JPG")));
    let id = first.expect("IMG_0001 imported")["id"].to_string();
    let show = phone.run(&["show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&show)).expect("show json");
    let events = shown["events"].as_array().expect("events");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["intake", "imported", "decided", "quarantined"], "{shown}");
    let imported = &events[1]["data"];
    assert_eq!(imported["make"], "Canon", "{imported}");
    assert_eq!(imported["model"], "Canon EOS R6", "{imported}");
    assert_eq!(imported["exif_time"], "2026-12-01T09:30:00", "{imported}");
    assert_eq!(imported["origin"], "card");
    assert_eq!(imported["officer"], "anna");
    assert!(imported["source_path"].as_str().is_some_and(|s| s.ends_with("DCIM/100CANON/IMG_0001.JPG")));
    assert!(events[3]["data"].get("exposure_ms").is_none(), "a card is no synced place: no exposure");
    // Again: nothing stored twice.
    let again = phone.run(&["import", "--case", "C-9", &root]);
    assert!(stdout(&again).contains("imported 0 file(s) into case C-9, 3 already there"), "{}", stdout(&again));
    assert_eq!(phone.stored().len(), 3);
    // With --remove-source: the sources go, each only after its copy verified; the broken one stays.
    let moved = phone.run(&["import", "--case", "C-9", "--remove-source", &root]);
    assert!(stdout(&moved).contains("3 source(s) removed"), "{}", stdout(&moved));
    for (p, _) in &card.good {
        assert!(!p.exists(), "{p:?} removed");
    }
    assert!(card.broken.exists(), "a file that was not imported is never removed");
    let v = phone.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn import_refuses_what_is_no_evidence_and_goes_on() {
    let phone = Phone::new();
    let dir = phone.dir.path();
    let ok = dir.join("ok.jpg");
    std::fs::write(&ok, camera_jpeg(7, "Nikon", "D850", "2026:12:02 10:00:00")).expect("ok");
    let empty = dir.join("empty.jpg");
    std::fs::write(&empty, b"").expect("empty");
    let link = dir.join("link.jpg");
    std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
    let gone = dir.join("gone.jpg");
    // The store itself and a camera-folder file are refused too.
    let cam = phone.shoot("IMG_cam.jpg", 3);
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let args = ["import", "--case", "C-1", &s(&empty), &s(&link), &s(&gone), &s(&cam), &s(&ok)];
    let out = phone.run_env(&args, &[("FOTOVAKT_CONFIG", &s(&write_cfg(&phone)))]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    for (what, why) in [
        ("empty.jpg", "empty file"),
        ("link.jpg", "symbolic link"),
        ("gone.jpg", "No such file or directory"),
        ("IMG_cam.jpg", "camera folder"),
    ] {
        assert!(err.lines().any(|l| l.contains(what) && l.contains(why)), "{what}: {err}");
    }
    assert!(stdout(&out).contains("imported 1 file(s) into case C-1, 4 failed"), "{}", stdout(&out));
    assert!(cam.exists(), "a camera-folder file is the watcher's: untouched");
    let out = phone.run(&["import", "--case", "", &s(&ok)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("a case ID is required"), "{}", stderr(&out));
}

fn write_cfg(phone: &Phone) -> PathBuf {
    let cfg = phone.dir.path().join("import.toml");
    std::fs::write(&cfg, format!("cameras = [{:?}]\n[classifier]\nenabled = false\n", phone.camera)).expect("cfg");
    cfg
}

/// A copy into a store on another filesystem killed midway: recovery rolls it back (or
/// finishes it) and never touches the card; the next import stores it exactly once.
#[test]
fn an_import_killed_mid_copy_is_recovered_and_the_card_is_never_touched() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        common::skip("/dev/shm is not available on this machine");
        return;
    }
    for point in ["after_journal", "mid_copy", "after_copy_fsync", "after_rename", "before_commit", "after_commit"] {
        let phone = Phone::with_store_under(Some(shm));
        let card = card(phone.dir.path());
        let (p, sha) = card.good[0].clone();
        let s = p.to_string_lossy().into_owned();
        let killed = phone.run_env(&["import", "--case", "K-1", &s], &[("FOTOVAKT_FAULT", point)]);
        assert_eq!(killed.status.signal(), Some(libc::SIGKILL), "{point}: {}", stderr(&killed));
        assert_eq!(sha256(&p), sha, "{point}: the card is untouched");
        let again = phone.run(&["import", "--case", "K-1", &s]);
        assert!(again.status.success(), "{point}: {}", stderr(&again));
        let items = json_items(&phone, "K-1");
        assert_eq!(items.len(), 1, "{point}: stored once: {items:?}");
        assert_eq!(phone.stored().iter().filter(|f| sha256(f) == sha).count(), 1, "{point}");
        assert_eq!(sha256(&p), sha, "{point}: the card is untouched");
        let v = phone.run(&["verify"]);
        assert!(v.status.success(), "{point}: {}", stdout(&v));
        let _ = std::fs::remove_dir_all(&phone.store);
    }
}
