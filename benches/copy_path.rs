//! The copy path measured (issue 10): a photo renamed into a camera folder on the
//! MediaProvider-like FUSE filesystem (`tests/common/mediafs/`) until it is verified in a store
//! on disk, as on a phone where `/storage/emulated/0` is FUSE and the store is on `/data`. For
//! 1024×768 and 12 MP JPEGs:
//!
//! * end to end: `Agent::on_media` on the renamed file (open, hash, EXIF, decide, journal, copy
//!   to `store/tmp`, fsync, verify, rename into `objects/`, fsync the directory, unlink the
//!   original, record), p50/p99 — the watcher's event delivery is not in it;
//! * by step: the same system calls the copy path makes, on the same filesystems, timed one by
//!   one (read through FUSE, SHA-256, write into the store, fsync, rename, directory fsync,
//!   unlink through FUSE), medians. The core reads the file twice (hash at intake, then the
//!   hashing copy), so "read" and "hash" count twice in the end-to-end figure.
//!
//! Run: `cargo bench --bench copy_path` as root (FUSE). `FOTOVAKT_BENCH_N` (default 200 small
//! photos; a fifth as many 12 MP ones). Prints SKIP where FUSE cannot be mounted.

#[path = "../tests/common/mediafs/mod.rs"]
mod mediafs;

/// The tests' skip helper, where `mediafs` looks for it (`crate::common::skip`).
#[path = "../tests/common/skip.rs"]
pub mod skip_helper;
mod common {
    pub use super::skip_helper as skip;
}

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use fotovakt::agent::{Agent, OutcomeKind};
use fotovakt::config::Config;
use fotovakt::quarantine::fsops;
use fotovakt::sample::SamplePhoto;
use sha2::Digest;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

const STEPS: [&str; 7] = ["read", "hash", "write", "fsync", "rename", "dir fsync", "unlink"];

/// One copy done by hand with the core's own primitives, each step timed (ms).
fn steps_once(src: &Path, store: &Path, i: usize) -> std::io::Result<[f64; 7]> {
    let mut t = [0.0; 7];
    let mut lap = Instant::now();
    let mut tick = |k: usize| {
        t[k] = lap.elapsed().as_secs_f64() * 1e3;
        lap = Instant::now();
    };
    let (file, id) = fsops::open_regular(src).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut bytes = vec![0u8; id.size as usize];
    let mut off = 0;
    while off < bytes.len() {
        let n = file.read_at(&mut bytes[off..], off as u64)?;
        if n == 0 {
            break;
        }
        off += n;
    }
    tick(0);
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    tick(1);
    let tmp = store.join("tmp").join(format!("{sha}-{i}.part"));
    let mut out = fsops::create_exclusive(&tmp)?;
    out.write_all(&bytes)?;
    tick(2);
    out.sync_all()?;
    tick(3);
    let dst_dir = store.join("objects").join(&sha[..2]);
    std::fs::create_dir_all(&dst_dir)?;
    fsops::rename_noreplace(&tmp, &dst_dir.join(format!("{sha}-{i}.jpg")))?;
    tick(4);
    fsops::fsync_dir(&dst_dir)?;
    tick(5);
    std::fs::remove_file(src)?;
    tick(6);
    Ok(t)
}

fn run(
    label: &str,
    w: u32,
    h: u32,
    n: usize,
    fs: &mediafs::MediaFs,
    root: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let camera = fs.mountpoint.join(format!("DCIM/{label}"));
    std::fs::create_dir_all(&camera)?;
    let store = root.join(format!("private/store-{label}"));
    let config = Config { store: Some(store.clone()), cameras: vec![camera.clone()], ..Config::default() };
    let mut config = config;
    config.classifier.enabled = false;
    let agent = Agent::open(config)?;
    agent.session_start("BENCH-COPY", Some("bench"), None)?;
    let photo =
        |i: usize| SamplePhoto { width: w, height: h, seed: i as u64 + 1, quality: 92, ..Default::default() }.jpeg();
    let mut e2e = Vec::with_capacity(n);
    let mut bytes_total = 0usize;
    for i in 0..n {
        let bytes = photo(i);
        bytes_total += bytes.len();
        let p = fotovakt::sample::write_like_android(&camera, &format!("IMG_{i:05}.jpg"), &bytes)?;
        let t = Instant::now();
        let o = agent.on_media(&p);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if o.kind != OutcomeKind::Quarantined {
            return Err(format!("photo {i} not quarantined: {:?} {:?}", o.kind, o.detail).into());
        }
        e2e.push(ms);
    }
    e2e.sort_by(f64::total_cmp);
    let mean_mb = bytes_total as f64 / n as f64 / 1e6;
    // The steps, on a second set of files (same sizes), straight into a scratch store layout.
    let scratch = root.join(format!("scratch-{label}"));
    std::fs::create_dir_all(scratch.join("tmp"))?;
    let mut per_step: Vec<Vec<f64>> = vec![Vec::new(); STEPS.len()];
    for i in 0..n {
        let p = fotovakt::sample::write_like_android(&camera, &format!("STEP_{i:05}.jpg"), &photo(n + i))?;
        let t = steps_once(&p, &scratch, i)?;
        for (k, v) in t.iter().enumerate() {
            per_step[k].push(*v);
        }
    }
    let med: Vec<f64> = per_step.into_iter().map(median).collect();
    let (largest, largest_ms) =
        STEPS.iter().zip(&med).max_by(|a, b| a.1.total_cmp(b.1)).map(|(s, v)| (*s, *v)).unwrap_or(("-", 0.0));
    println!(
        "copy path {label} ({w}x{h}, mean {mean_mb:.2} MB, n={n}): rename -> verified in store p50 {:.2} ms  p99 {:.2} ms",
        percentile(&e2e, 50.0),
        percentile(&e2e, 99.0)
    );
    let breakdown: Vec<String> = STEPS.iter().zip(&med).map(|(s, v)| format!("{s} {v:.2}")).collect();
    println!("  steps (median ms, one pass): {}", breakdown.join("  "));
    println!(
        "  largest step: {largest} ({largest_ms:.2} ms; read through FUSE {:.0} MB/s, SHA-256 {:.0} MB/s, store write {:.0} MB/s)",
        mean_mb / (med[0] / 1e3),
        mean_mb / (med[1] / 1e3),
        mean_mb / (med[2] / 1e3)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    if let Some(why) = mediafs::MediaFs::unavailable() {
        common::skip::skip(format!("{why}; the copy-path benchmark needs the FUSE test filesystem"));
        return Ok(());
    }
    let n: usize = std::env::var("FOTOVAKT_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let root = std::env::temp_dir().join(format!("fotovakt-copy-bench-{}", std::process::id()));
    std::fs::create_dir_all(root.join("backing"))?;
    std::fs::create_dir_all(root.join("mnt"))?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let fs = mediafs::MediaFs::mount(&root.join("backing"), &root.join("mnt"))?;
        println!(
            "camera folder on mediafs (FUSE, backing {}), store on {} (disk)",
            fs.backing.display(),
            root.join("private").display()
        );
        run("1024x768", 1024, 768, n, &fs, &root)?;
        run("12MP", 4000, 3000, (n / 5).max(5), &fs, &root)?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&root);
    result
}
