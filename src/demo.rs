//! `fotovakt demo`: the real agent on an embedded default. It builds a phone-like tree in a
//! temporary folder (a camera folder inside a Syncthing-synced `DCIM`, a private store beside
//! it), shows that a store inside the synced folder is refused, starts the real watcher, writes
//! photos the way an Android camera does, prints each decision as it happens, lets an officer
//! tag and release, verifies the ledger, hands the case over as a package that is verified
//! offline, and ends with the statistics and the admin's HTML report.
//!
//! The off-duty photos are real ones (`examples/photos/`, public domain or CC0, licences in
//! `examples/photos/LICENSES.md`), embedded in the binary, so the classifier's decision shows
//! with its score and threshold. Without ONNX Runtime the demo says so once, with the fix, and
//! decides by context.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use crossbeam_channel::Receiver;

use crate::agent::{Agent, Outcome, OutcomeKind};
use crate::config::{ClockTime, Config, Duty, Shift, Weekday, WorkSite};
use crate::sample::{self, SamplePhoto};
use crate::watch::{WatchGuard, WatchOptions};

/// Errors of the demo (anything goes to the edge as text).
pub type DemoResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const CASE: &str = "TOLL-2026-0142";

/// A real photo the demo shoots off duty: file name, what it shows, JPEG bytes (EXIF capture
/// time inside: Sunday 2026-11-22, off duty).
struct RealPhoto {
    name: &'static str,
    shows: &'static str,
    bytes: &'static [u8],
}

/// Public-domain / CC0 sample photos shipped by scikit-image (see examples/photos/LICENSES.md),
/// re-encoded small as demo inputs.
const REAL_PHOTOS: &[RealPhoto] = &[
    RealPhoto {
        name: "IMG_20261122_141500.jpg",
        shows: "a cat on a sofa",
        bytes: include_bytes!("../examples/photos/chelsea.jpg"),
    },
    RealPhoto {
        name: "IMG_20261122_142200.jpg",
        shows: "a cup of coffee",
        bytes: include_bytes!("../examples/photos/coffee.jpg"),
    },
    RealPhoto {
        name: "IMG_20261122_143100.jpg",
        shows: "printed text (a document)",
        bytes: include_bytes!("../examples/photos/text.jpg"),
    },
    RealPhoto {
        name: "IMG_20261122_144000.jpg",
        shows: "a handful of coins",
        bytes: include_bytes!("../examples/photos/coins.jpg"),
    },
];

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("demo timestamps are well-formed")
}

/// Run the demo, printing to `out`. The temporary tree is removed unless `keep`.
pub fn run(out: &mut dyn Write, keep: bool) -> DemoResult<()> {
    let root = std::env::temp_dir().join(format!("fotovakt-demo-{}", std::process::id()));
    let result = run_in(&root, out);
    if keep {
        writeln!(out, "\nkept the demo tree at {}", root.display())?;
    } else {
        writeln!(out, "\n(the demo tree is removed now; `demo --keep` keeps it, package and report included)")?;
        let _ = std::fs::remove_dir_all(&root);
    }
    result
}

fn run_in(root: &Path, out: &mut dyn Write) -> DemoResult<()> {
    let (agent, runtime_missing, camera) = open_agent(root, out)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let guard = WatchGuard::spawn(agent.clone(), WatchOptions::default(), move |o: &Outcome| {
        let _ = tx.send(o.clone());
    })?;
    announce_model(out, &agent, runtime_missing)?;
    writeln!(
        out,
        "   watching {} (each line: time to hash, decide and, for case material, move and verify)\n",
        camera.display()
    )?;
    let mut phone = Phone { agent, camera, rx, seed: 100 };
    let personal = phone.off_duty(out)?;
    let session_items = phone.session_and_work_site(out)?;
    phone.officer_steps(out, &personal, &session_items)?;
    let report = guard.stop()?;
    phone.verify_and_hand_off(root, out)?;
    phone.statistics(root, out)?;
    writeln!(
        out,
        "\n   watcher: {} events, {} files handled, {} reconcile{}",
        report.events,
        report.handled,
        report.reconciles,
        if report.reconciles == 1 { "" } else { "s" }
    )?;
    let left: Vec<String> =
        std::fs::read_dir(&phone.camera)?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    writeln!(out, "   camera folder now holds: {}", left.join(", "))?;
    Ok(())
}

/// Steps 1 and 2: the phone-like tree, the refused store inside the synced folder, and the
/// agent on the private store. Also says whether ONNX Runtime is missing.
fn open_agent(root: &Path, out: &mut dyn Write) -> DemoResult<(Arc<Agent>, bool, PathBuf)> {
    let dcim = root.join("phone/DCIM");
    let camera = dcim.join("Camera");
    std::fs::create_dir_all(&camera)?;
    std::fs::create_dir_all(dcim.join(".stfolder"))?; // Syncthing syncs DCIM, like a backup app would
    let store = root.join("private/fotovakt-store");

    writeln!(out, "fotovakt demo: a work phone whose camera folder is synced to a personal cloud")?;
    writeln!(out, "  camera folder  {}", camera.display())?;
    writeln!(out, "  sync marker    {}", dcim.join(".stfolder").display())?;
    writeln!(out, "  private store  {}\n", store.display())?;

    let mut config = Config {
        store: Some(dcim.join("fotovakt-store")),
        cameras: vec![camera.clone()],
        settle: Duration::from_millis(500),
        duty: Duty {
            shifts: vec![Shift {
                days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
                start: ClockTime(7 * 60),
                end: ClockTime(15 * 60),
            }],
        },
        work_sites: vec![WorkSite {
            name: "Storskog border crossing".into(),
            lat: 69.6617,
            lon: 30.1271,
            radius_m: 500.0,
        }],
        ..Config::default()
    };
    writeln!(out, "1. A store inside the synced folder is refused:")?;
    match Agent::open(config.clone()) {
        Err(e) => writeln!(out, "   error: {e}\n")?,
        Ok(_) => return Err("the demo's synced store was not refused".into()),
    }

    config.store = Some(store);
    // Without ONNX Runtime: say so once, here, with the fix; the agent then runs without the
    // classifier instead of repeating the reason on every line.
    let runtime_missing = match crate::classify::runtime::environment(config.classifier.ort_dylib.as_deref()) {
        Err(crate::classify::ClassifyError::RuntimeMissing(_)) if config.classifier.enabled => {
            config.classifier.enabled = false;
            true
        }
        _ => false,
    };
    let agent = Arc::new(Agent::open(config)?);
    Ok((agent, runtime_missing, camera))
}

/// Step 2: what the agent decides with.
fn announce_model(out: &mut dyn Write, agent: &Agent, runtime_missing: bool) -> DemoResult<()> {
    match agent.model_status() {
        Ok(()) => writeln!(out, "2. Agent started; on-device classifier loaded.")?,
        Err(_) if runtime_missing => writeln!(
            out,
            "2. Agent started WITHOUT the classifier: ONNX Runtime is not installed, so photos are decided by \
             context and sessions only.\n   Fix: `bash scripts/demo` installs it and runs this demo (or \
             `python3 -m pip install onnxruntime==1.31.1`, or set ORT_DYLIB_PATH to libonnxruntime.so)."
        )?,
        Err(why) => {
            writeln!(out, "2. Agent started; classifier unavailable ({why}): deciding by context and sessions.")?
        }
    }
    Ok(())
}

/// The running demo: the agent, the camera folder it watches and the watcher's outcomes.
struct Phone {
    agent: Arc<Agent>,
    camera: PathBuf,
    rx: Receiver<Outcome>,
    seed: u64,
}

impl Phone {
    /// Write a generated photo the way a camera app does and print the decision on it.
    fn shoot(&mut self, out: &mut dyn Write, name: &str, photo: SamplePhoto) -> DemoResult<Outcome> {
        self.seed += 1;
        let bytes = SamplePhoto { seed: self.seed, ..photo }.jpeg();
        sample::write_like_android(&self.camera, name, &bytes)?;
        let o = wait_for(&self.rx, name, false)?;
        print_outcome(out, &o)?;
        Ok(o)
    }

    /// Step 3: real photos off duty, no session; returns one the agent kept.
    fn off_duty(&mut self, out: &mut dyn Write) -> DemoResult<Outcome> {
        let decides = if self.agent.model_status().is_ok() {
            "the on-device classifier decides"
        } else {
            "no classifier (see 2.), so they stay"
        };
        writeln!(out, "3. Off duty, no session: real photos (examples/photos/LICENSES.md); {decides}")?;
        let mut personal = None;
        for photo in REAL_PHOTOS {
            sample::write_like_android(&self.camera, photo.name, photo.bytes)?;
            let o = wait_for(&self.rx, photo.name, false)?;
            print_outcome(out, &o)?;
            writeln!(out, "   {:>12} ^ {}", "", photo.shows)?;
            if personal.is_none() && o.kind == OutcomeKind::Kept {
                personal = Some(o);
            }
        }
        let personal = personal.ok_or("no real photo was kept")?;

        Ok(personal)
    }

    /// Steps 4 and 5: a case session with three photos, then a photo at a work site; returns
    /// the session's outcomes.
    fn session_and_work_site(&mut self, out: &mut dyn Write) -> DemoResult<Vec<Outcome>> {
        writeln!(out, "\n4. Officer opens a case session for {CASE}; three photos follow")?;
        self.agent.session_start(CASE, Some("officer.hansen"), Some(Duration::from_secs(3600)))?;
        let mut session_items = Vec::new();
        for (i, t) in ["10:01", "10:02", "10:04"].iter().enumerate() {
            let name = format!("IMG_20261123_10{:02}0{}.jpg", i + 1, i);
            let o = self.shoot(
                out,
                &name,
                SamplePhoto { capture_time: Some(at(&format!("2026-11-23 {t}"))), ..Default::default() },
            )?;
            session_items.push(o);
        }
        self.agent.session_stop()?;

        writeln!(out, "\n5. Session closed. A photo whose EXIF GPS lies inside a work site")?;
        self.shoot(
            out,
            "IMG_20261123_113000.jpg",
            SamplePhoto {
                capture_time: Some(at("2026-11-23 11:30")),
                gps: Some((69.6625, 30.1290)),
                ..Default::default()
            },
        )?;

        Ok(session_items)
    }

    /// Steps 6 and 7: the officer tags a kept photo and releases a false positive.
    fn officer_steps(&mut self, out: &mut dyn Write, personal: &Outcome, session_items: &[Outcome]) -> DemoResult<()> {
        writeln!(out, "\n6. The officer tags a photo the classifier kept as evidence")?;
        let tagged = self.agent.tag(
            &personal_path(&self.camera, personal),
            CASE,
            Some("officer.hansen"),
            Some("the suspect's flat, seen in the background"),
        )?;
        print_outcome(out, &tagged)?;

        writeln!(out, "\n7. One session photo was a false positive: the officer releases it")?;
        let victim = session_items.last().and_then(|o| o.item).ok_or("no session item to release")?;
        let released = self.agent.release(&victim.to_string(), "photo of the canteen menu", Some("officer.hansen"))?;
        print_outcome(out, &released)?;
        // The release lands back in the camera folder; the watcher sees it and leaves it alone.
        let back = wait_for(
            &self.rx,
            Path::new(&released.path).file_name().and_then(|n| n.to_str()).unwrap_or_default(),
            true,
        )?;
        writeln!(
            out,
            "   back in the camera folder; the watcher sees it and leaves it (same SHA-256 as the release):"
        )?;
        print_outcome(out, &back)?;

        Ok(())
    }

    /// Steps 8 and 9: verify, then the case package checked as its receiver would.
    fn verify_and_hand_off(&self, root: &Path, out: &mut dyn Write) -> DemoResult<()> {
        writeln!(out, "\n8. verify: re-hash every stored file, check the hash chain")?;
        let v = self.agent.verify()?;
        if v.problems.is_empty() {
            writeln!(out, "   OK: {} events chained, {} stored files verified", v.events, v.files)?;
        } else {
            for p in &v.problems {
                writeln!(out, "   PROBLEM: {p}")?;
            }
            return Err("verify found problems".into());
        }
        writeln!(out, "\n9. Hand-off: the case package for the case file, checked the way its receiver would")?;
        let package = root.join(format!("handoff/{CASE}.zip"));
        std::fs::create_dir_all(root.join("handoff"))?;
        let exported = self.agent.export(CASE, &package, Some("officer.hansen"))?;
        writeln!(
            out,
            "   exported {} originals ({} bytes) with manifest and custody log to {}",
            exported.items.len(),
            exported.bytes,
            package.display()
        )?;
        // The receiver trusts this phone's registered key (what `stats` shows) and no other.
        let mut trust = crate::signing::TrustList::default();
        let fingerprint = exported.signer.clone().unwrap_or_default();
        trust.add(&fingerprint, "the demo phone's key").map_err(|e| e.to_string())?;
        let check = crate::export::Check { trust: Some(&trust), identities: None };
        let checked = crate::export::verify_package_with(&package, &check)?;
        if !checked.problems.is_empty() {
            return Err(format!("verify-package: {}", checked.problems.join("; ")).into());
        }
        writeln!(
            out,
            "   verify-package OK: {} files re-hashed, {} custody events, package sha256 {}",
            checked.files,
            checked.events,
            checked.digest.as_deref().unwrap_or("-")
        )?;
        writeln!(out, "   signed by this phone's device key {fingerprint} (verify-package --trust)")?;

        Ok(())
    }

    /// Step 10: the admin's statistics and HTML report.
    fn statistics(&self, root: &Path, out: &mut dyn Write) -> DemoResult<()> {
        writeln!(out, "\n10. Admin statistics (counts and durations only):")?;
        let s = self.agent.stats(false)?;
        for line in crate::stats::table(&s).lines() {
            writeln!(out, "   {line}")?;
        }
        // The two figures measure different spans; say which, or they look inconsistent.
        writeln!(
            out,
            "   (exposure runs from each photo's write time to its verified arrival in the store: it includes\n    \
         the wait for the camera to finish the file and for the watcher, and, for the tagged photo,\n    \
         for the officer. The [ms] on each decision above is only the agent's own work, from its\n    \
         first read to the verified move.)"
        )?;
        let report_path = root.join("report.html");
        self.agent.write_report(&report_path)?;
        writeln!(out, "   the same as charts, one self-contained HTML file: {}", report_path.display())?;
        Ok(())
    }
}

fn personal_path(camera: &Path, o: &Outcome) -> String {
    let p = PathBuf::from(&o.path);
    camera.join(p.file_name().unwrap_or_default()).to_string_lossy().into_owned()
}

fn wait_for(rx: &Receiver<Outcome>, name: &str, skipped_too: bool) -> DemoResult<Outcome> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let o = rx.recv_timeout(left).map_err(|_| format!("no decision for {name} within 20 s"))?;
        if o.path.ends_with(name) && (skipped_too || o.kind != OutcomeKind::Skipped) {
            return Ok(o);
        }
    }
}

fn print_outcome(out: &mut dyn Write, o: &Outcome) -> DemoResult<()> {
    let name = Path::new(&o.path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // The kind's one text (`OutcomeKind::as_str`); a move into the store stands out.
    let what = match o.kind {
        OutcomeKind::Quarantined => o.kind.as_str().to_uppercase(),
        other => other.as_str().to_string(),
    };
    let source = o.source.map(|s| s.as_str()).unwrap_or("-");
    let rule = short_rule(o.rule.as_deref().or(o.detail.as_deref()).unwrap_or(""));
    writeln!(out, "   [{:>7.2} ms] {name:<28} {what:<11} {source:<10} {rule}", o.handle_ms)?;
    Ok(())
}

/// The rule text without the reason the classifier is off (step 2 says it once).
fn short_rule(rule: &str) -> String {
    const OFF: &str = "no classifier (";
    match rule.find(OFF) {
        Some(i) => {
            let rest = &rule[i + OFF.len()..];
            let mut depth = 1;
            let end = rest.char_indices().find_map(|(k, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(k + 1)
            });
            format!("{}no classifier{}", &rule[..i], end.map(|e| &rest[e..]).unwrap_or(""))
        }
        None => rule.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_rule_drops_only_the_reason_in_parentheses() {
        assert_eq!(
            short_rule("off duty, no session, no classifier (ONNX Runtime not found: x (y); z)"),
            "off duty, no session, no classifier"
        );
        assert_eq!(short_rule("no classifier (disabled) and more"), "no classifier and more");
        assert_eq!(short_rule("case score 0.9 ≥ threshold 0.3"), "case score 0.9 ≥ threshold 0.3");
    }

    #[test]
    fn real_photos_are_jpegs_with_a_capture_time() {
        for p in REAL_PHOTOS {
            assert_eq!(&p.bytes[..2], &[0xFF, 0xD8], "{} is a JPEG", p.name);
            let exif = exif::Reader::new().read_from_container(&mut std::io::Cursor::new(p.bytes)).expect("EXIF");
            let t = exif.get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY).expect("capture time");
            assert!(t.display_value().to_string().starts_with("2026-11-22"), "{}: {}", p.name, t.display_value());
        }
    }
}
