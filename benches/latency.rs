//! End-to-end latency of the core agent (issue 2's benchmark): the time from a photo being
//! renamed into the camera folder (Android-style: `.pending-…` then rename) to its verified
//! arrival in the store, with decisions from an open case session, through the real watcher,
//! real SQLite and real files. Also reports RSS and the CPU used while idle.
//!
//! Run: `cargo bench --bench latency` (env `FOTOVAKT_BENCH_N`, default 600 photos).
//!
//! With the classifier deciding (issue 12): `FOTOVAKT_BENCH_PHOTOS=DIR` takes the JPEGs of
//! DIR (e.g. `/tmp/fotovakt-bench-flavours/none`, 12 MP without thumbnails, from
//! `bench/classify_make_photos.py`) in turn instead of generated ones, loads the classifier
//! and opens no session and no duty hours: every photo is decided by the model, and the
//! time is from the rename to the decision (for a quarantined photo: to its verified
//! arrival, gone from the camera folder).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fotovakt::agent::{Agent, Outcome, OutcomeKind};
use fotovakt::config::Config;
use fotovakt::sample::SamplePhoto;
use fotovakt::watch::{WatchGuard, WatchOptions};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let n: usize = std::env::var("FOTOVAKT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let tmp = std::env::temp_dir().join(format!("fotovakt-bench-{}", std::process::id()));
    let camera = tmp.join("phone/DCIM/Camera");
    std::fs::create_dir_all(&camera)?;
    // The core's own cost by default; FOTOVAKT_BENCH_MODEL=1 also loads the classifier (ONNX
    // Runtime + model: memory, not time, since a session decides without running it).
    let real: Vec<std::path::PathBuf> = match std::env::var_os("FOTOVAKT_BENCH_PHOTOS") {
        Some(dir) => {
            let mut v: Vec<_> = std::fs::read_dir(&dir)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
                .collect();
            v.sort();
            v
        }
        None => Vec::new(),
    };
    let classifier_decides = !real.is_empty();
    let with_model = classifier_decides || std::env::var("FOTOVAKT_BENCH_MODEL").is_ok_and(|v| v == "1");
    let mut config =
        Config { store: Some(tmp.join("private/store")), cameras: vec![camera.clone()], ..Config::default() };
    config.classifier.enabled = with_model;
    let agent = Arc::new(Agent::open(config)?);
    if !classifier_decides {
        agent.session_start("BENCH-1", Some("bench"), None)?;
    }

    // Each photo is encoded just before it is written (outside the timed window) and dropped
    // after, so the peak RSS is the agent's, not a pile of test photos.
    let photo = |i: usize| match real.get(i % real.len().max(1)) {
        Some(p) => std::fs::read(p).expect("bench photo"),
        None => SamplePhoto { width: 1024, height: 768, seed: i as u64 + 1, ..Default::default() }.jpeg(),
    };
    let mut quarantined = Vec::new();
    let mut total_bytes = 0usize;

    let (tx, rx) = crossbeam_channel::unbounded::<(Outcome, Instant)>();
    let guard = WatchGuard::spawn(agent.clone(), WatchOptions::default(), move |o: &Outcome| {
        let _ = tx.send((o.clone(), Instant::now()));
    })?;
    std::thread::sleep(Duration::from_millis(200));

    // One photo at a time: latency from rename to verified arrival.
    let mut lat = Vec::with_capacity(n);
    let mut inside = Vec::with_capacity(n);
    for i in 0..n {
        let bytes = photo(i);
        total_bytes += bytes.len();
        let name = format!("IMG_{i:05}.jpg");
        let pending = camera.join(format!(".pending-1999999999-{name}"));
        let mut f = std::fs::File::create(&pending)?;
        f.write_all(&bytes)?;
        drop(f);
        let t0 = Instant::now();
        std::fs::rename(&pending, camera.join(&name))?;
        loop {
            let (o, at) = rx.recv_timeout(Duration::from_secs(10))?;
            if o.path.ends_with(&name) {
                if classifier_decides {
                    assert!(matches!(o.kind, OutcomeKind::Quarantined | OutcomeKind::Kept), "{o:?}");
                    if o.kind == OutcomeKind::Quarantined {
                        quarantined.push(at.duration_since(t0).as_secs_f64() * 1e3);
                    }
                } else {
                    assert_eq!(o.kind, OutcomeKind::Quarantined, "{o:?}");
                }
                lat.push(at.duration_since(t0).as_secs_f64() * 1e3);
                inside.push(o.handle_ms);
                break;
            }
        }
        // Let the watcher's durability barrier run between photos, as between real shots.
        std::thread::sleep(Duration::from_millis(5));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    inside.sort_by(|a, b| a.total_cmp(b));
    let mean_size = total_bytes / n.max(1);

    // Idle: no photos for 3 s; the agent should not poll.
    let cpu0 = cpu_seconds();
    std::thread::sleep(Duration::from_secs(3));
    let idle_cpu = (cpu_seconds() - cpu0) / 3.0 * 100.0;
    let report = guard.stop()?;
    let v = agent.verify()?;
    assert!(v.problems.is_empty(), "{:?}", v.problems);

    println!("fotovakt latency benchmark (rename into camera folder -> verified in store)");
    quarantined.sort_by(|a, b| a.total_cmp(b));
    if classifier_decides {
        println!(
            "  photos            {n} × {mean_size} bytes ({} JPEGs of {}), decided by the classifier (no session, no duty hours)",
            real.len(),
            std::env::var("FOTOVAKT_BENCH_PHOTOS").unwrap_or_default()
        );
        if !quarantined.is_empty() {
            println!(
                "  quarantined       {} photos: rename -> gone p50 {:.2} ms, p99 {:.2} ms",
                quarantined.len(),
                percentile(&quarantined, 50.0),
                percentile(&quarantined, 99.0)
            );
        }
    } else {
        println!("  photos            {n} × {mean_size} bytes (JPEG 1024×768), decided by an open case session");
        println!(
            "  classifier        {}",
            if with_model { "loaded (not run: the session decides)" } else { "not loaded" }
        );
    }
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
    println!("  watcher           {} events, {} handled, {} rescans", report.events, report.handled, report.rescans);
    println!("  verify            {} events chained, {} stored files verified", v.events, v.files);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
