//! End-to-end latency of the core agent (issue 2's benchmark): the time from a photo being
//! renamed into the camera folder (Android-style: `.pending-…` then rename) to its verified
//! arrival in the store, with decisions from an open case session, through the real watcher,
//! real SQLite and real files. Also reports RSS and the CPU used while idle.
//!
//! Run: `cargo bench --bench latency` (env `FOTOVAKT_BENCH_N`, default 600 photos).
//!
//! With the classifier deciding (issue 12): `FOTOVAKT_BENCH_PHOTOS=DIR` takes the JPEGs of
//! DIR in turn instead of generated ones; DIR is one folder of JPEGs or, as
//! `bench/classify_make_photos.py` writes them, a root with one subfolder per EXIF flavour
//! (`none`: 12 MP without a thumbnail, `piexif`: with a 160x120 one, …), each run in turn
//! (`FOTOVAKT_BENCH_FLAVOURS=none,piexif` picks some). The classifier is loaded and no session
//! and no duty hours are open: every photo is decided by the model. Per photo, in the same
//! run and process tree (pin it with `taskset`, the peer inherits it), the Python peer
//! (`bench/classify_peer.py --serve`: Pillow `draft` + onnxruntime, one thread) first times
//! its classify-only (read + decode + infer) of the same file, outside fotovakt's timed
//! window; `FOTOVAKT_BENCH_PEER=0` skips it. Reported per flavour:
//!
//! - rename -> decision: the outcome reaching the watcher's observer (for a quarantined
//!   photo that is after the move, its folder fsyncs and the closing ledger commit);
//! - rename -> gone: a second inotify watch on the camera folder (the bench's own) sees the
//!   agent's rename out of it (`IN_MOVED_FROM`): the moment a sync client could no longer
//!   see the photo;
//! - where the time goes: rename -> event (the bench's watch sees the `IN_MOVED_TO`), event
//!   -> the agent starts on the file (watcher thread, lane, a barrier still running),
//!   `Agent::on_media` itself, and inside it (timed apart, after the timed run, on the same
//!   photos and with the same classifier settings): open + read + SHA-256 + EXIF as intake
//!   does it (`media::inspect_open`), SHA-256 alone, EXIF alone, decode, inference; the rest
//!   of `on_media` is the ledger (queries, intent, WAL fsync) and the move.
//!
//! Env: `FOTOVAKT_BENCH_N` (photos per flavour, default 40 here), `FOTOVAKT_BENCH_GAP_MS`
//! (pause after each photo, default 5), `FOTOVAKT_BENCH_STAGES=0` (skip the stage pass).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use fotovakt::agent::{Agent, Outcome, OutcomeKind};
use fotovakt::classify::{Classifier, Source};
use fotovakt::config::Config;
use fotovakt::media::{self, ExifFacts};
use fotovakt::quarantine::fsops;
use fotovakt::sample::SamplePhoto;
use fotovakt::watch::{WatchGuard, WatchOptions};
use notify::event::{ModifyKind, RenameMode};
use notify::{EventKind, Watcher};
use sha2::Digest;

const ORDER: &[&str] = &["none", "project", "piexif", "exiftool", "camera"];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Nearest-rank percentile of an unsorted list.
fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, p)
}

fn p50(v: &[f64]) -> f64 {
    pct(v, 50.0)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// The CPUs this process (and so the peer it starts) may run on, as `taskset` lists them.
fn affinity() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Cpus_allowed_list:")).map(|l| l[18..].trim().to_string()))
        .unwrap_or_else(|| "?".into())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms_since(t0: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(t0).as_secs_f64() * 1e3
}

/// The agent under test in a fresh folder, its watcher, and the outcomes it reports.
struct Rig {
    tmp: PathBuf,
    camera: PathBuf,
    agent: Arc<Agent>,
    guard: Option<WatchGuard>,
    outcomes: Receiver<(Outcome, Instant)>,
}

impl Rig {
    fn open(classifier: bool) -> Result<Rig, Box<dyn std::error::Error>> {
        let tmp = std::env::temp_dir().join(format!("fotovakt-bench-{}", std::process::id()));
        let camera = tmp.join("phone/DCIM/Camera");
        std::fs::create_dir_all(&camera)?;
        let mut config =
            Config { store: Some(tmp.join("private/store")), cameras: vec![camera.clone()], ..Config::default() };
        config.classifier.enabled = classifier;
        let agent = Arc::new(Agent::open(config)?);
        Ok(Rig { tmp, camera, agent, guard: None, outcomes: crossbeam_channel::never() })
    }

    fn watch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Outcome, Instant)>();
        self.guard = Some(WatchGuard::spawn(self.agent.clone(), WatchOptions::default(), move |o: &Outcome| {
            let _ = tx.send((o.clone(), Instant::now()));
        })?);
        self.outcomes = rx;
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    /// Write `bytes` under a `.pending-` name (untimed), rename it to `name`, and wait for
    /// the agent's outcome: the outcome, the rename's instant and the outcome's.
    fn shoot(&self, name: &str, bytes: &[u8]) -> Result<(Outcome, Instant, Instant), Box<dyn std::error::Error>> {
        let pending = self.camera.join(format!(".pending-1999999999-{name}"));
        let mut f = std::fs::File::create(&pending)?;
        f.write_all(bytes)?;
        drop(f);
        let t0 = Instant::now();
        std::fs::rename(&pending, self.camera.join(name))?;
        loop {
            let (o, at) = self.outcomes.recv_timeout(Duration::from_secs(20))?;
            if o.path.ends_with(name) {
                return Ok((o, t0, at));
            }
        }
    }

    /// Stop the watcher and verify the ledger and store.
    fn finish(mut self) -> Result<String, Box<dyn std::error::Error>> {
        let r = self.guard.take().map(WatchGuard::stop).transpose()?.unwrap_or_default();
        let v = self.agent.verify()?;
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        let _ = std::fs::remove_dir_all(&self.tmp);
        Ok(format!(
            "watcher {} events, {} handled, {} rescans; verify {} events chained, {} stored files verified",
            r.events, r.handled, r.rescans, v.events, v.files
        ))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    match std::env::var_os("FOTOVAKT_BENCH_PHOTOS") {
        Some(dir) => classifier_run(Path::new(&dir)),
        None => core_run(),
    }
}

/// Issue 2's figure: generated 1024×768 photos decided by an open case session.
fn core_run() -> Result<(), Box<dyn std::error::Error>> {
    let n = env_num("FOTOVAKT_BENCH_N", 600) as usize;
    // The core's own cost by default; FOTOVAKT_BENCH_MODEL=1 also loads the classifier (ONNX
    // Runtime + model: memory, not time, since a session decides without running it).
    let with_model = std::env::var("FOTOVAKT_BENCH_MODEL").is_ok_and(|v| v == "1");
    let mut rig = Rig::open(with_model)?;
    rig.agent.session_start("BENCH-1", Some("bench"), None)?;
    rig.watch()?;
    let (mut lat, mut inside, mut total_bytes) = (Vec::with_capacity(n), Vec::with_capacity(n), 0usize);
    for i in 0..n {
        // Encoded just before it is written (outside the timed window) and dropped after, so
        // the peak RSS is the agent's, not a pile of test photos.
        let bytes = SamplePhoto { width: 1024, height: 768, seed: i as u64 + 1, ..Default::default() }.jpeg();
        total_bytes += bytes.len();
        let (o, t0, at) = rig.shoot(&format!("IMG_{i:05}.jpg"), &bytes)?;
        assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
        lat.push(ms_since(t0, at));
        inside.push(o.handle_ms);
        // Let the watcher's durability barrier run between photos, as between real shots.
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.sort_by(f64::total_cmp);
    inside.sort_by(f64::total_cmp);
    // Idle: no photos for 3 s; the agent should not poll.
    let cpu0 = cpu_seconds();
    std::thread::sleep(Duration::from_secs(3));
    let idle_cpu = (cpu_seconds() - cpu0) / 3.0 * 100.0;
    let finished = rig.finish()?;

    println!("fotovakt latency benchmark (rename into camera folder -> verified in store)");
    println!(
        "  photos            {n} × {} bytes (JPEG 1024×768), decided by an open case session",
        total_bytes / n.max(1)
    );
    println!("  classifier        {}", if with_model { "loaded (not run: the session decides)" } else { "not loaded" });
    println!("  latency p50       {:.2} ms", percentile(&lat, 50.0));
    println!("  latency p90       {:.2} ms", percentile(&lat, 90.0));
    println!("  latency p99       {:.2} ms", percentile(&lat, 99.0));
    println!("  latency max       {:.2} ms", lat.last().copied().unwrap_or(0.0));
    println!(
        "  in the agent      p50 {:.2} ms, p99 {:.2} ms (hash, EXIF, policy, journal, rename, record)",
        percentile(&inside, 50.0),
        percentile(&inside, 99.0)
    );
    println!("  idle CPU          {idle_cpu:.2} % of one core over 3 s");
    println!("  peak RSS          {:.1} MB (VmHWM)", rss_kib("VmHWM:") as f64 / 1024.0);
    println!("  {finished}");
    Ok(())
}

// ---- With the classifier deciding -------------------------------------------------------

fn jpegs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect::<Vec<PathBuf>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p: &PathBuf| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .collect();
    v.sort();
    v
}

/// DIR's JPEGs as one flavour, or one flavour per subfolder (as `benches/classify.rs`).
fn flavours(root: &Path) -> Vec<(String, Vec<PathBuf>)> {
    let top = jpegs(root);
    if !top.is_empty() {
        return vec![(root.file_name().map_or("photos".into(), |n| n.to_string_lossy().into_owned()), top)];
    }
    let wanted: Option<Vec<String>> =
        std::env::var("FOTOVAKT_BENCH_FLAVOURS").ok().map(|v| v.split(',').map(str::to_string).collect());
    let mut subs: Vec<(String, Vec<PathBuf>)> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}; run python3 bench/classify_make_photos.py first", root.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), jpegs(&e.path())))
        .filter(|(n, v)| !v.is_empty() && wanted.as_ref().is_none_or(|w| w.contains(n)))
        .collect();
    subs.sort_by_key(|(n, _)| (ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()), n.clone()));
    assert!(!subs.is_empty(), "no photos under {}", root.display());
    subs
}

/// The Python peer, driven as `benches/classify.rs` does (one photo path a line).
struct Peer {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl Peer {
    fn spawn() -> Option<Peer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/classify_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--serve", "--threads", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let to = child.stdin.take()?;
        let mut from = BufReader::new(child.stdout.take()?);
        let mut line = String::new();
        from.read_line(&mut line).ok()?;
        (line.trim() == "ready").then_some(Peer { child, to: Some(to), from })
    }

    /// The peer's classify-only time for one photo, or `None` if Pillow could not decode it.
    fn time(&mut self, photo: &Path) -> Option<f64> {
        writeln!(self.to.as_mut()?, "{}", photo.display()).expect("peer stdin");
        let mut line = String::new();
        self.from.read_line(&mut line).expect("peer stdout");
        line.trim().parse().ok()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.to.take());
        let _ = self.child.wait();
    }
}

/// The bench's own inotify watch on the camera folder: when each name arrived (`IN_MOVED_TO`)
/// and when it left (`IN_MOVED_FROM`: the agent moved it into the store).
struct Witness {
    _watcher: notify::RecommendedWatcher,
    events: Receiver<(notify::Event, Instant)>,
}

impl Witness {
    fn on(camera: &Path) -> notify::Result<Witness> {
        let (tx, events) = crossbeam_channel::unbounded();
        let mut w = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
            if let Ok(e) = r {
                let _ = tx.send((e, Instant::now()));
            }
        })?;
        w.watch(camera, notify::RecursiveMode::NonRecursive)?;
        Ok(Witness { _watcher: w, events })
    }

    /// When `path` arrived, and (if `gone_too`) when it left; waits briefly for the events.
    fn of(&self, path: &Path, gone_too: bool) -> (Option<Instant>, Option<Instant>) {
        let (mut arrived, mut gone) = (None, None);
        let deadline = Instant::now() + Duration::from_millis(500);
        while arrived.is_none() || (gone_too && gone.is_none()) {
            let Ok((e, at)) = self.events.recv_deadline(deadline) else { break };
            if e.paths.first().map(PathBuf::as_path) != Some(path) {
                continue;
            }
            match e.kind {
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => arrived = arrived.or(Some(at)),
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => gone = gone.or(Some(at)),
                _ => {}
            }
        }
        (arrived, gone)
    }
}

/// One photo through the agent (and the peer), in milliseconds from the rename.
#[derive(Debug, Clone, Copy)]
struct Shot {
    quarantined: bool,
    decision: f64,
    /// The bench's watch saw the rename.
    arrived: Option<f64>,
    /// `Agent::on_media` began (the outcome's instant less its `handle_ms`).
    started: f64,
    handle: f64,
    /// The bench's watch saw the agent move it out of the camera folder.
    gone: Option<f64>,
    peer: Option<f64>,
}

/// The timed run of one flavour: `n` photos in turn, peer first, then fotovakt.
fn run_flavour(
    rig: &Rig,
    witness: &Witness,
    peer: &mut Option<Peer>,
    tag: usize,
    files: &[PathBuf],
    n: usize,
) -> Result<(Vec<Shot>, usize), Box<dyn std::error::Error>> {
    let gap = Duration::from_millis(env_num("FOTOVAKT_BENCH_GAP_MS", 5));
    let (mut shots, mut other) = (Vec::with_capacity(n), 0);
    // Two warm-up photos (peer and agent), not counted.
    for i in 0..n + 2 {
        let src = &files[i % files.len()];
        let peer_ms = peer.as_mut().and_then(|p| p.time(src));
        let bytes = std::fs::read(src)?;
        let name = format!("IMG_{tag}{i:05}.jpg");
        let (o, t0, at) = rig.shoot(&name, &bytes)?;
        let quarantined = o.kind == OutcomeKind::Quarantined;
        let (arrived, gone) = witness.of(&rig.camera.join(&name), quarantined);
        std::thread::sleep(gap);
        if i < 2 {
            continue;
        }
        if !matches!(o.kind, OutcomeKind::Quarantined | OutcomeKind::Kept) {
            eprintln!("{name} ({}): {:?} {:?}", src.display(), o.kind, o.detail);
            other += 1;
            continue;
        }
        let decision = ms_since(t0, at);
        shots.push(Shot {
            quarantined,
            decision,
            arrived: arrived.map(|a| ms_since(t0, a)),
            started: decision - o.handle_ms,
            handle: o.handle_ms,
            gone: gone.map(|g| ms_since(t0, g)),
            peer: peer_ms,
        });
    }
    Ok((shots, other))
}

/// Intake's and the classifier's stages on the same photos, timed apart (medians, ms).
#[derive(Default)]
struct Stages {
    read: Vec<f64>,
    inspect: Vec<f64>,
    sha256: Vec<f64>,
    exif: Vec<f64>,
    decode: Vec<f64>,
    infer: Vec<f64>,
    classify: Vec<f64>,
    thumbnail: usize,
    refined: usize,
    scaled: usize,
    full: usize,
}

fn stages(c: &mut Classifier, files: &[PathBuf], max_image_bytes: u64) -> Stages {
    let mut s = Stages::default();
    for (i, f) in files.iter().enumerate() {
        let t = Instant::now();
        let plain = std::fs::read(f).expect("read");
        let read = t.elapsed().as_secs_f64() * 1e3;
        drop(plain);
        let t = Instant::now();
        let (file, id) = fsops::open_regular(f).expect("open");
        let ins = media::inspect_open(&file, &id, max_image_bytes).expect("inspect");
        let inspect = t.elapsed().as_secs_f64() * 1e3;
        let bytes = ins.bytes.expect("bytes kept");
        let t = Instant::now();
        let _ = sha2::Sha256::digest(&bytes);
        let sha256 = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let exif = ExifFacts::parse(&bytes);
        let exif_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let a = c.assess_with(&bytes, Some(&exif));
        let classify = t.elapsed().as_secs_f64() * 1e3;
        // The first photo warms the caches and the session.
        let Ok(a) = a else { continue };
        if i == 0 {
            continue;
        }
        s.read.push(read);
        s.inspect.push(inspect);
        s.sha256.push(sha256);
        s.exif.push(exif_ms);
        s.decode.push(a.decode_ms);
        s.infer.push(a.infer_ms);
        s.classify.push(classify);
        match a.source {
            Source::Thumbnail => s.thumbnail += 1,
            Source::Scaled if exif.thumbnail.is_some() => s.refined += 1,
            Source::Scaled => s.scaled += 1,
            Source::Full => s.full += 1,
        }
    }
    s
}

fn opt_p50(v: impl Iterator<Item = Option<f64>>) -> (f64, usize) {
    let v: Vec<f64> = v.flatten().collect();
    (p50(&v), v.len())
}

fn report_flavour(name: &str, photos: usize, shots: &[Shot], other: usize) {
    let decision: Vec<f64> = shots.iter().map(|s| s.decision).collect();
    let q: Vec<&Shot> = shots.iter().filter(|s| s.quarantined).collect();
    let qdec: Vec<f64> = q.iter().map(|s| s.decision).collect();
    let (gone, gone_n) = opt_p50(q.iter().map(|s| s.gone));
    let (peer, peer_n) = opt_p50(shots.iter().map(|s| s.peer));
    let (arrived, _) = opt_p50(shots.iter().map(|s| s.arrived));
    let queue: Vec<f64> = shots.iter().filter_map(|s| s.arrived.map(|a| s.started - a)).collect();
    let handle: Vec<f64> = shots.iter().map(|s| s.handle).collect();
    let kept_handle: Vec<f64> = shots.iter().filter(|s| !s.quarantined).map(|s| s.handle).collect();
    let q_handle: Vec<f64> = q.iter().map(|s| s.handle).collect();
    let after_gone: Vec<f64> = q.iter().filter_map(|s| s.gone.map(|g| s.decision - g)).collect();
    let fv = p50(&decision);
    println!(
        "== {name}: {} timed photos ({photos} files in turn), {} quarantined, {other} other",
        shots.len(),
        q.len()
    );
    println!(
        "  fotovakt rename -> decision   p50 {fv:.1} ms, p99 {:.1} ms (quarantined p50 {:.1}, kept p50 {:.1})",
        pct(&decision, 99.0),
        p50(&qdec),
        p50(&shots.iter().filter(|s| !s.quarantined).map(|s| s.decision).collect::<Vec<_>>()),
    );
    println!(
        "  fotovakt rename -> gone       p50 {gone:.1} ms, p99 {:.1} ms ({gone_n} quarantined, seen by inotify)",
        pct(&q.iter().filter_map(|s| s.gone).collect::<Vec<_>>(), 99.0)
    );
    println!("  peer classify-only           median {peer:.1} ms ({peer_n} photos, same run, alternating)");
    println!(
        "  ratio peer / fotovakt        {:.2} (decision p50), {:.2} (gone p50); goal >= 1",
        peer / fv,
        peer / gone
    );
    println!(
        "  where it goes (p50)          rename -> event {arrived:.2} | event -> on_media {:.2} | on_media {:.1} \
         (kept {:.1}, quarantined {:.1}) | gone -> decision {:.1}",
        p50(&queue),
        p50(&handle),
        p50(&kept_handle),
        p50(&q_handle),
        p50(&after_gone),
    );
    println!(
        "{{\"flavour\":\"{name}\",\"timed\":{},\"quarantined\":{},\"decision_p50_ms\":{fv:.2},\"decision_p99_ms\":{:.2},\"gone_p50_ms\":{gone:.2},\"peer_median_ms\":{peer:.2},\"ratio\":{:.3},\"event_ms\":{arrived:.3},\"queue_ms\":{:.3},\"on_media_ms\":{:.2},\"on_media_kept_ms\":{:.2},\"on_media_quarantined_ms\":{:.2},\"gone_to_decision_ms\":{:.2}}}",
        shots.len(),
        q.len(),
        pct(&decision, 99.0),
        peer / fv,
        p50(&queue),
        p50(&handle),
        p50(&kept_handle),
        p50(&q_handle),
        p50(&after_gone),
    );
}

fn report_stages(name: &str, s: &Stages, shots: &[Shot]) {
    let (inspect, classify) = (p50(&s.inspect), p50(&s.classify));
    let q: Vec<&Shot> = shots.iter().filter(|x| x.quarantined).collect();
    // In the timed run: on_media's start to the file gone (intake, decide, the intent and its
    // WAL fsync, the rename), and from gone to the outcome (folder fsyncs, closing commit).
    let before_gone: Vec<f64> = q.iter().filter_map(|x| x.gone.map(|g| g - x.started)).collect();
    let kept: Vec<f64> = shots.iter().filter(|x| !x.quarantined).map(|x| x.handle).collect();
    println!(
        "  {name}, on_media's stages timed apart (p50 of {}): read alone {:.1} ms | open+read+SHA-256+EXIF \
         (intake) {inspect:.1} ms (SHA-256 alone {:.1}, EXIF alone {:.2}) | classify {classify:.1} ms (decode {:.1}, \
         infer {:.1}; thumbnail {}, refined {}, scaled {}, full {})",
        s.inspect.len(),
        p50(&s.read),
        p50(&s.sha256),
        p50(&s.exif),
        p50(&s.decode),
        p50(&s.infer),
        s.thumbnail,
        s.refined,
        s.scaled,
        s.full,
    );
    println!(
        "  {name}, by difference from the timed run (p50): on_media start -> gone {:.1} ms, less intake and \
         classify = {:.1} ms of ledger queries, intent commit, WAL fsync, lock and rename; kept photos' on_media \
         {:.1} ms, less intake and classify = {:.1} ms",
        p50(&before_gone),
        p50(&before_gone) - inspect - classify,
        p50(&kept),
        p50(&kept) - inspect - classify,
    );
}

/// Issue 12's figure: 12 MP photos decided by the classifier, the peer in the same run.
fn classifier_run(root: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let n = env_num("FOTOVAKT_BENCH_N", 40) as usize;
    let flavours = flavours(root);
    let mut rig = Rig::open(true)?;
    rig.agent.model_status().map_err(|e| format!("classifier not loaded: {e}"))?;
    rig.watch()?;
    let witness = Witness::on(&rig.camera)?;
    let mut peer = if std::env::var("FOTOVAKT_BENCH_PEER").is_ok_and(|v| v == "0") {
        None
    } else {
        Some(Peer::spawn().ok_or("python3 bench/classify_peer.py --serve (needs Pillow, numpy, onnxruntime)")?)
    };
    let settings = rig.agent.config().classifier.clone();
    let max_image_bytes = rig.agent.config().max_image_bytes;
    println!(
        "fotovakt latency benchmark, classifier deciding (no session, no duty hours), {} ({n} photos per flavour)",
        root.display()
    );
    println!(
        "  CPUs {} (the peer inherits them); fotovakt: decode_threads {}, intra-op {}; peer: {}; gap {} ms",
        affinity(),
        settings.decode_threads,
        settings.threads,
        if peer.is_some() { "Pillow draft + onnxruntime, 1 thread, alternating photo by photo" } else { "skipped" },
        env_num("FOTOVAKT_BENCH_GAP_MS", 5)
    );
    let mut runs = Vec::new();
    for (tag, (name, files)) in flavours.iter().enumerate() {
        let (shots, other) = run_flavour(&rig, &witness, &mut peer, tag, files, n)?;
        report_flavour(name, files.len(), &shots, other);
        runs.push(shots);
    }
    drop(peer);
    let peak = rss_kib("VmHWM:") as f64 / 1024.0;
    let finished = rig.finish()?;
    println!("  peak RSS {peak:.1} MB (VmHWM, before the stage pass); {finished}");
    if std::env::var("FOTOVAKT_BENCH_STAGES").is_ok_and(|v| v == "0") {
        return Ok(());
    }
    let mut c = Classifier::load(&settings)?;
    for ((name, files), shots) in flavours.iter().zip(&runs) {
        let s = stages(&mut c, files, max_image_bytes);
        report_stages(name, &s, shots);
    }
    Ok(())
}
