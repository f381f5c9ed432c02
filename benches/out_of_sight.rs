//! Out of sight first, measured before and after in one run (issue 25, item 3).
//!
//! The camera folders are on the MediaProvider-like FUSE filesystem (`tests/common/mediafs/`)
//! and the stores on disk (every move into a store is the verified cross-filesystem copy, as
//! on a phone). Two agents run side by side, each with its real watcher and classifier:
//! `before` judges files where they lie (`stash = false`, the code before this change),
//! `after` first renames each into its staging folder (`stash = true`). Photos alternate
//! between them one by one, so the machine's load falls on both alike.
//!
//! For each photo, from its rename into the camera folder (Android-style: `.pending-…`, then
//! rename; the write itself is not timed):
//!
//! * **out of sight**: the bench's own inotify watch on the camera folder sees the name leave
//!   (`IN_MOVED_FROM`, or a delete): from then on no sync client that lists the folder sees
//!   it, and on a phone MediaProvider has taken it out of the image and video collections in
//!   the same rename (`renameFileForFuse`). A photo judged personal without the stash never
//!   leaves: "stays";
//! * **verified in the store**: the watcher's outcome for a quarantined photo (after the
//!   copy is verified, the original removed and the ending recorded);
//! * **back**: for a photo judged personal after the stash, its outcome (after it is back at
//!   its name and that is durable).
//!
//! Deciders: an open case session; the classifier judging "keep"; the classifier judging
//! "quarantine" (the photos are split by a classifier pass first); and a 200 MB video, with a
//! session (quarantined) and without one (kept: the host has no frame decoder).
//!
//! Run as root (FUSE): `cargo bench --bench out_of_sight`. Photos: the 12 MP JPEGs of
//! `python3 bench/classify_make_photos.py --flavours none` (`FOTOVAKT_BENCH_PHOTOS`, default
//! `/tmp/fotovakt-bench-flavours/none`). `FOTOVAKT_BENCH_ROUNDS` (times each photo is used per
//! decider, default 2), `FOTOVAKT_BENCH_VIDEOS` (videos per decider and side, default 6),
//! `FOTOVAKT_BENCH_VIDEO_MB` (default 200). Prints SKIP where FUSE cannot be mounted.

#[path = "../tests/common/mediafs/mod.rs"]
mod mediafs;

/// The tests' skip helper, where `mediafs` looks for it (`crate::common::skip`).
#[path = "../tests/common/skip.rs"]
pub mod skip_helper;
mod common {
    pub use super::skip_helper as skip;
}

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fotovakt::agent::{Agent, Outcome, OutcomeKind};
use fotovakt::classify::Classifier;
use fotovakt::config::Config;
use fotovakt::watch::{WatchGuard, WatchOptions};
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, Watcher};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// When each name left the camera folder (the first time), by the bench's own inotify watch.
struct Witness {
    _watcher: notify::RecommendedWatcher,
    gone: Arc<Mutex<HashMap<PathBuf, Instant>>>,
}

impl Witness {
    fn on(camera: &Path) -> notify::Result<Witness> {
        let gone: Arc<Mutex<HashMap<PathBuf, Instant>>> = Arc::default();
        let seen = gone.clone();
        let mut w = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
            let at = Instant::now();
            let Ok(e) = r else { return };
            let left = matches!(e.kind, EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_));
            if let (true, Some(p)) = (left, e.paths.first()) {
                seen.lock().unwrap_or_else(|p| p.into_inner()).entry(p.clone()).or_insert(at);
            }
        })?;
        w.watch(camera, notify::RecursiveMode::NonRecursive)?;
        Ok(Witness { _watcher: w, gone })
    }

    fn gone(&self, p: &Path) -> Option<Instant> {
        self.gone.lock().unwrap_or_else(|p| p.into_inner()).get(p).copied()
    }
}

/// One agent with its camera folder, store, watcher and the outcomes it reports.
struct Side {
    label: &'static str,
    camera: PathBuf,
    agent: Arc<Agent>,
    guard: Option<WatchGuard>,
    outcomes: Receiver<(Outcome, Instant)>,
    witness: Witness,
}

impl Side {
    fn open(label: &'static str, stash: bool, fs: &mediafs::MediaFs, root: &Path) -> Res<Side> {
        let camera = fs.mountpoint.join(format!("DCIM/Camera-{label}"));
        std::fs::create_dir_all(&camera)?;
        let mut config = Config {
            store: Some(root.join(format!("private/store-{label}"))),
            cameras: vec![camera.clone()],
            stash,
            ..Config::default()
        };
        config.classifier.enabled = true;
        let agent = Arc::new(Agent::open(config)?);
        if let Err(why) = agent.model_status() {
            return Err(format!("the classifier is needed here: {why}").into());
        }
        let (tx, outcomes) = crossbeam_channel::unbounded::<(Outcome, Instant)>();
        let guard = WatchGuard::spawn(agent.clone(), WatchOptions::default(), move |o: &Outcome| {
            let _ = tx.send((o.clone(), Instant::now()));
        })?;
        let witness = Witness::on(&camera)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(Side { label, camera, agent, guard: Some(guard), outcomes, witness })
    }

    /// Write `bytes` as `name` Android-style (untimed), rename it into place and wait for the
    /// agent's first outcome for it.
    fn shoot(&self, name: &str, bytes: &[u8], limit: Duration) -> Res<Shot> {
        let pending = self.camera.join(format!(".pending-1999999999-{name}"));
        let mut f = std::fs::File::create(&pending)?;
        f.write_all(bytes)?;
        drop(f);
        let path = self.camera.join(name);
        let t0 = Instant::now();
        std::fs::rename(&pending, &path)?;
        let renamed = t0.elapsed().as_secs_f64() * 1e3;
        let (o, at) = loop {
            let (o, at) = self.outcomes.recv_timeout(limit)?;
            if o.path.ends_with(name) {
                break (o, at);
            }
        };
        // The witness stamps the name's leaving when inotify tells it; give it a moment.
        let gone = (0..50).find_map(|_| {
            self.witness.gone(&path).or_else(|| {
                std::thread::sleep(Duration::from_millis(2));
                None
            })
        });
        let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1e3;
        let shot = Shot {
            renamed,
            started: ms(at) - o.handle_ms,
            kind: o.kind,
            gone: gone.map(ms),
            verified: (o.kind == OutcomeKind::Quarantined).then(|| ms(at)),
            back: o.returned_to.as_ref().map(|_| ms(at)),
        };
        // Drop what the next photo must not pay for: the kept file, the stored copy of a video.
        let _ = std::fs::remove_file(&path);
        Ok(shot)
    }

    fn finish(mut self) -> Res<String> {
        let r = self.guard.take().map(WatchGuard::stop).transpose()?.unwrap_or_default();
        Ok(format!("{}: watcher {} events, {} handled", self.label, r.events, r.handled))
    }
}

#[derive(Debug, Clone, Copy)]
struct Shot {
    /// How long the camera's own rename into the folder took (in every figure).
    renamed: f64,
    /// From the rename until the agent began on the file (`on_media`): the watcher's share.
    started: f64,
    kind: OutcomeKind,
    gone: Option<f64>,
    verified: Option<f64>,
    back: Option<f64>,
}

/// One row of the table: the shots of one decider on each side.
struct Row {
    decider: String,
    before: Vec<Shot>,
    after: Vec<Shot>,
}

fn summary(shots: &[Shot]) -> String {
    let gone: Vec<f64> = shots.iter().filter_map(|s| s.gone).collect();
    let stays = shots.len() - gone.len();
    let verified: Vec<f64> = shots.iter().filter_map(|s| s.verified).collect();
    let back: Vec<f64> = shots.iter().filter_map(|s| s.back).collect();
    let g = if gone.is_empty() {
        "stays in sight".to_string()
    } else {
        let more = if stays > 0 { format!(" ({stays} stayed)") } else { String::new() };
        format!("{:.1} / {:.1}{more}", pct(&gone, 50.0), pct(&gone, 99.0))
    };
    let v = if verified.is_empty() {
        "-".into()
    } else {
        format!("{:.1} / {:.1}", pct(&verified, 50.0), pct(&verified, 99.0))
    };
    let b = if back.is_empty() { "-".into() } else { format!("{:.1} / {:.1}", pct(&back, 50.0), pct(&back, 99.0)) };
    format!("{g} | {v} | {b}")
}

fn print_table(rows: &[Row]) {
    println!();
    println!("p50 / p99 ms from the rename into the camera folder:");
    println!(
        "| decider | n | side | out of sight (gone from the listing) | verified in the store | back at its name |"
    );
    println!("|---|---|---|---|---|---|");
    for r in rows {
        for (side, shots) in [("before", &r.before), ("after", &r.after)] {
            println!("| {} | {} | {side} | {} |", r.decider, shots.len(), summary(shots));
        }
    }
    println!();
    println!("where the time before the agent goes (p50 ms): the camera's rename itself; rename -> on_media starts");
    for r in rows {
        for (side, shots) in [("before", &r.before), ("after", &r.after)] {
            let renamed: Vec<f64> = shots.iter().map(|s| s.renamed).collect();
            let started: Vec<f64> = shots.iter().map(|s| s.started).collect();
            println!(
                "  {:<32} {side:<6} rename {:.2}  on_media starts {:.2}",
                r.decider,
                pct(&renamed, 50.0),
                pct(&started, 50.0)
            );
        }
    }
    println!();
    println!("ratios (before p50 / after p50), same run:");
    for r in rows {
        let g = |v: &[Shot]| pct(&v.iter().filter_map(|s| s.gone).collect::<Vec<_>>(), 50.0);
        let ver = |v: &[Shot]| pct(&v.iter().filter_map(|s| s.verified).collect::<Vec<_>>(), 50.0);
        let (gb, ga, vb, va) = (g(&r.before), g(&r.after), ver(&r.before), ver(&r.after));
        let gone = if gb.is_nan() { "never out of sight before".to_string() } else { format!("{:.1}x", gb / ga) };
        let verified = if vb.is_nan() { "-".to_string() } else { format!("{:.2}x", vb / va) };
        println!("  {:<28} out of sight {gone:<28} verified {verified}", r.decider);
    }
}

/// Split the photos by what the classifier decides about them (no session, no duty hours).
fn split(photos: &[PathBuf]) -> Res<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut c = Classifier::load(&Config::default().classifier)?;
    let (mut keep, mut quarantine) = (Vec::new(), Vec::new());
    for p in photos {
        let a = c.assess(&std::fs::read(p)?)?;
        if a.case_score >= a.threshold {
            quarantine.push(p.clone());
        } else {
            keep.push(p.clone());
        }
    }
    Ok((keep, quarantine))
}

/// Alternate the photos between the two sides, `rounds` times each.
fn run_photos(decider: &str, photos: &[PathBuf], rounds: u64, sides: &[&Side; 2], k: &mut u64) -> Res<Row> {
    let mut row = Row { decider: decider.into(), before: Vec::new(), after: Vec::new() };
    for _ in 0..rounds {
        for p in photos {
            let bytes = std::fs::read(p)?;
            for side in sides {
                *k += 1;
                let s = side.shoot(&format!("IMG_{k:06}.jpg"), &bytes, Duration::from_secs(30))?;
                if side.label == "before" {
                    row.before.push(s)
                } else {
                    row.after.push(s)
                }
                std::thread::sleep(Duration::from_millis(30));
            }
        }
    }
    Ok(row)
}

/// A video: an MP4 `ftyp` box, then `mb` MiB of noise (a different start each time).
fn video(mb: u64, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity((mb << 20) as usize + 32);
    v.extend_from_slice(&[0, 0, 0, 0x18]);
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while (v.len() as u64) < (mb << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn run_videos(decider: &str, n: u64, mb: u64, sides: &[&Side; 2], k: &mut u64) -> Res<Row> {
    let mut row = Row { decider: decider.into(), before: Vec::new(), after: Vec::new() };
    for i in 0..n {
        let bytes = video(mb, *k + i);
        for side in sides {
            *k += 1;
            let s = side.shoot(&format!("VID_{k:06}.mp4"), &bytes, Duration::from_secs(120))?;
            if side.label == "before" {
                row.before.push(s)
            } else {
                row.after.push(s)
            }
            // The stored copy is not what the next video should be measured beside.
            for f in side.agent.store().objects()?.iter().filter(|(n, _)| n.ends_with(".mp4")) {
                let _ = std::fs::remove_file(side.agent.store().path_of(&f.0));
            }
        }
    }
    Ok(row)
}

fn bench(fs: &mediafs::MediaFs, root: &Path, photos: &[PathBuf]) -> Res<()> {
    let rounds = env_num("FOTOVAKT_BENCH_ROUNDS", 2);
    let videos = env_num("FOTOVAKT_BENCH_VIDEOS", 6);
    let mb = env_num("FOTOVAKT_BENCH_VIDEO_MB", 200);
    let (keep, quarantine) = split(photos)?;
    println!("{} photos: the classifier keeps {}, quarantines {}", photos.len(), keep.len(), quarantine.len());
    let before = Side::open("before", false, fs, root)?;
    let after = Side::open("after", true, fs, root)?;
    let sides = [&before, &after];
    let mut k = 0;
    let mut rows = Vec::new();
    for s in sides {
        s.agent.session_start("BENCH-25", Some("bench"), None)?;
    }
    rows.push(run_photos("12 MP, session", &photos[..photos.len().min(20)], rounds, &sides, &mut k)?);
    rows.push(run_videos(&format!("{mb} MB video, session"), videos, mb, &sides, &mut k)?);
    for s in sides {
        s.agent.session_stop()?;
    }
    rows.push(run_photos("12 MP, classifier: keep", &keep, rounds, &sides, &mut k)?);
    rows.push(run_photos("12 MP, classifier: quarantine", &quarantine, rounds, &sides, &mut k)?);
    rows.push(run_videos(&format!("{mb} MB video, no session (kept)"), videos, mb, &sides, &mut k)?);
    for r in &rows {
        for (side, shots) in [("before", &r.before), ("after", &r.after)] {
            let kinds: Vec<OutcomeKind> = shots.iter().map(|s| s.kind).collect();
            println!(
                "  {} / {side}: {:?}",
                r.decider,
                kinds.iter().fold(HashMap::new(), |mut m, k| {
                    *m.entry(format!("{k:?}")).or_insert(0) += 1;
                    m
                })
            );
        }
    }
    print_table(&rows);
    println!("{}", before.finish()?);
    println!("{}", after.finish()?);
    Ok(())
}

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if let Some(why) = mediafs::MediaFs::unavailable() {
        println!("SKIP: {why}; the out-of-sight benchmark needs the FUSE test filesystem");
        return Ok(());
    }
    let dir = std::env::var_os("FOTOVAKT_BENCH_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/fotovakt-bench-flavours/none"));
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}; run python3 bench/classify_make_photos.py --flavours none", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    photos.sort();
    if photos.is_empty() {
        return Err(format!("no JPEGs in {}", dir.display()).into());
    }
    let root = std::env::temp_dir().join(format!("fotovakt-sight-bench-{}", std::process::id()));
    std::fs::create_dir_all(root.join("backing"))?;
    std::fs::create_dir_all(root.join("mnt"))?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("out of sight first: camera folders on mediafs (FUSE), stores on disk; load average {}", load.trim());
    let result = (|| -> Res<()> {
        let fs = mediafs::MediaFs::mount(&root.join("backing"), &root.join("mnt"))?;
        bench(&fs, &root, &photos)
    })();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average after: {}", load.trim());
    let _ = std::fs::remove_dir_all(&root);
    result
}
