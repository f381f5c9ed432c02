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
//!   `Agent::on_media` itself, gone -> decision (after the rename: the folder fsyncs and the
//!   closing commit), and the stages inside, timed right after each photo (after the gap) on
//!   the same bytes by a second classifier with the agent's settings: read alone; open, read,
//!   SHA-256 and EXIF as intake does it (`media::inspect_open`); SHA-256 alone, EXIF alone,
//!   decode, inference. Paired per photo, on_media less those is the ledger's share (queries,
//!   the item and intent commit, the WAL fsync, the move lock, the rename).
//!
//! Env: `FOTOVAKT_BENCH_N` (photos per flavour, default 40 here), `FOTOVAKT_BENCH_GAP_MS`
//! (pause after each photo, default 5), `FOTOVAKT_BENCH_STAGES=0` (no stage timing, no second
//! classifier: the peak RSS is then the agent's alone).

#[path = "common/flavours.rs"]
mod flavours;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use flavours::{flavours, Peer};
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

/// The bench's own inotify watch on the camera folder: when each name arrived (`IN_MOVED_TO`)
/// and when it left (`IN_MOVED_FROM`: the agent moved it into the store).
struct Witness {
    _watcher: notify::RecommendedWatcher,
    events: Receiver<(notify::Event, Instant)>,
    /// Whether its thread got `SCHED_FIFO` (set at its first event).
    realtime: Arc<std::sync::OnceLock<bool>>,
}

impl Witness {
    fn on(camera: &Path) -> notify::Result<Witness> {
        let (tx, events) = crossbeam_channel::unbounded();
        let realtime = Arc::new(std::sync::OnceLock::new());
        let told = realtime.clone();
        let mut w = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
            // On 2 busy cores (the agent's 2-thread decode) notify's thread would wake late
            // and stamp late; a real-time policy (root only) lets it stamp when inotify
            // answers. It runs for microseconds per event.
            told.get_or_init(|| {
                let param = libc::sched_param { sched_priority: 1 };
                // SAFETY: sets the calling thread's policy; `param` outlives the call.
                unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
            });
            if let Ok(e) = r {
                let _ = tx.send((e, Instant::now()));
            }
        })?;
        w.watch(camera, notify::RecursiveMode::NonRecursive)?;
        Ok(Witness { _watcher: w, events, realtime })
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
    stage: Option<Stage>,
}

/// Intake's and the classifier's stages on one photo, timed right after the agent handled
/// it, on the same bytes with the same classifier settings (ms).
#[derive(Debug, Clone, Copy)]
struct Stage {
    read: f64,
    /// Open + read + SHA-256 + EXIF, as intake does it (`media::inspect_open`).
    inspect: f64,
    sha256: f64,
    exif: f64,
    decode: f64,
    infer: f64,
    /// `Classifier::assess_with`, all of it.
    classify: f64,
    source: Source,
    thumbnail: bool,
}

fn stage(c: &mut Classifier, f: &Path, max_image_bytes: u64) -> Option<Stage> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    drop(std::fs::read(f).ok()?);
    let read = ms(t);
    let t = Instant::now();
    let (file, id) = fsops::open_regular(f).ok()?;
    let ins = media::inspect_open(&file, &id, max_image_bytes).ok()?;
    let inspect = ms(t);
    let bytes = ins.bytes?;
    // SHA-256 alone: the faster of two runs (the first often ran several times slower than
    // the whole of intake, which hashes the same bytes).
    let sha256 = (0..2)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(sha2::Sha256::digest(&bytes));
            ms(t)
        })
        .fold(f64::INFINITY, f64::min);
    let t = Instant::now();
    let exif = ExifFacts::parse(&bytes);
    let exif_ms = ms(t);
    let t = Instant::now();
    let a = c.assess_with(&bytes, Some(&exif)).ok()?;
    let classify = ms(t);
    Some(Stage {
        read,
        inspect,
        sha256,
        exif: exif_ms,
        decode: a.decode_ms,
        infer: a.infer_ms,
        classify,
        source: a.source,
        thumbnail: exif.thumbnail.is_some(),
    })
}

/// The timed run of one flavour: `n` photos in turn, peer first, then fotovakt, then (with
/// `stages`) the stages timed apart on the same photo.
fn run_flavour(
    rig: &Rig,
    witness: &Witness,
    peer: &mut Option<Peer>,
    mut stages: Option<&mut Classifier>,
    (tag, files): (usize, &[PathBuf]),
    n: usize,
) -> Result<(Vec<Shot>, usize), Box<dyn std::error::Error>> {
    let gap = Duration::from_millis(env_num("FOTOVAKT_BENCH_GAP_MS", 5));
    let max_image_bytes = rig.agent.config().max_image_bytes;
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
        let stage = stages.as_deref_mut().and_then(|c| stage(c, src, max_image_bytes));
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
            stage,
        });
    }
    Ok((shots, other))
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

fn report_stages(name: &str, shots: &[Shot]) {
    let st: Vec<(&Shot, Stage)> = shots.iter().filter_map(|x| x.stage.map(|s| (x, s))).collect();
    if st.is_empty() {
        return;
    }
    let m = |f: &dyn Fn(&Stage) -> f64| p50(&st.iter().map(|(_, s)| f(s)).collect::<Vec<_>>());
    let count = |f: &dyn Fn(&Stage) -> bool| st.iter().filter(|(_, s)| f(s)).count();
    println!(
        "  {name}: stages timed right after each photo (p50 of {}): read alone {:.1} ms | intake's open + read + \
         SHA-256 + EXIF {:.1} ms (SHA-256 alone {:.1}, EXIF alone {:.2}) | classify {:.1} ms (decode {:.1}, infer \
         {:.1}; paths: thumbnail {}, refined {}, scaled {}, full {})",
        st.len(),
        m(&|s| s.read),
        m(&|s| s.inspect),
        m(&|s| s.sha256),
        m(&|s| s.exif),
        m(&|s| s.classify),
        m(&|s| s.decode),
        m(&|s| s.infer),
        count(&|s| s.source == Source::Thumbnail),
        count(&|s| s.source == Source::Scaled && s.thumbnail),
        count(&|s| s.source == Source::Scaled && !s.thumbnail),
        count(&|s| s.source == Source::Full),
    );
    // Paired per photo: what on_media spent beyond intake and the classifier.
    let rest = |v: Vec<f64>| p50(&v);
    let before_gone = rest(
        st.iter()
            .filter(|(x, _)| x.quarantined)
            .filter_map(|(x, s)| x.gone.map(|g| g - x.started - s.inspect - s.classify))
            .collect(),
    );
    let kept =
        rest(st.iter().filter(|(x, _)| !x.quarantined).map(|(x, s)| x.handle - s.inspect - s.classify).collect());
    println!(
        "  {name}: on_media less intake and classify, paired per photo (p50): quarantined, up to gone {before_gone:.1} ms \
         (ledger queries, item + intent commit, WAL fsync, move lock, rename); kept {kept:.1} ms (ledger queries, \
         item commit)"
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
    // The stages are timed by a second classifier of the bench's own (its memory counts in
    // the peak RSS; FOTOVAKT_BENCH_STAGES=0 for the agent's alone).
    let mut stages = if std::env::var("FOTOVAKT_BENCH_STAGES").is_ok_and(|v| v == "0") {
        None
    } else {
        Some(Classifier::load(&settings)?)
    };
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
    for (tag, (name, files)) in flavours.iter().enumerate() {
        let (shots, other) = run_flavour(&rig, &witness, &mut peer, stages.as_mut(), (tag, files), n)?;
        report_flavour(name, files.len(), &shots, other);
        report_stages(name, &shots);
    }
    drop(peer);
    let peak = rss_kib("VmHWM:") as f64 / 1024.0;
    let finished = rig.finish()?;
    let fifo = witness.realtime.get().copied().unwrap_or(false);
    println!(
        "  the bench's inotify watch ran {}",
        if fifo { "SCHED_FIFO" } else { "at normal priority (no SCHED_FIFO: its times may be late)" }
    );
    let whose = if stages.is_some() { "agent + the bench's stage classifier" } else { "the agent's" };
    println!("  peak RSS {peak:.1} MB (VmHWM, {whose}); {finished}");
    Ok(())
}
