//! Classifier benchmark (not a timed test): per-photo time for 12 MP camera JPEGs
//! (read + decode + infer) on 1 thread, backlog throughput with batching on all cores,
//! and peak RSS. Photos come from `bench/classify_make_photos.py` (default
//! `/tmp/fotovakt-bench-12mp-noisy`, or `FOTOVAKT_BENCH_PHOTOS`); `bench/classify_bench.sh`
//! runs this beside the Python peer.

use std::path::PathBuf;
use std::time::Instant;

use criterion::Criterion;
use fotovakt::classify::{Classifier, Settings, Source};

fn photos() -> Vec<PathBuf> {
    let dir = std::env::var_os("FOTOVAKT_BENCH_PHOTOS")
        .map_or_else(|| PathBuf::from("/tmp/fotovakt-bench-12mp-noisy"), PathBuf::from);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run python3 bench/classify_make_photos.py first", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no photos in {}", dir.display());
    v
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(files: &[PathBuf]) {
    for thumbs in [true, false] {
        let mut c =
            Classifier::load(&Settings { threads: 1, thumbnail_first: thumbs, ..Settings::default() }).expect("load");
        let mut times = Vec::new();
        let mut sources = [0usize; 3];
        for round in 0..3 {
            for f in files {
                let t = Instant::now();
                let bytes = std::fs::read(f).expect("read");
                let a = c.assess(&bytes).expect("assess");
                if round > 0 {
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                    sources[match a.source {
                        Source::Thumbnail => 0,
                        Source::Scaled => 1,
                        Source::Full => 2,
                    }] += 1;
                }
            }
        }
        // the first pass is the agent's case: one classifier, photos read one at a time
        println!(
            "{{\"fotovakt\":\"assess, 1 thread\",\"thumbnail_first\":{thumbs},\"photos\":{},\"median_ms\":{:.2},\"mean_ms\":{:.2},\"thumbnail\":{},\"scaled\":{},\"peak_rss_mb_so_far\":{:.1}}}",
            files.len(),
            median(times.clone()),
            times.iter().sum::<f64>() / times.len() as f64,
            sources[0],
            sources[1],
            peak_rss_mb()
        );
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut c = Classifier::load(&Settings { threads, ..Settings::default() }).expect("load");
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    // warm-up round, not timed
    for chunk in bytes.chunks(16) {
        let items: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        c.assess_batch(&items);
    }
    let t2 = Instant::now();
    let mut m = 0;
    for chunk in bytes.chunks(16) {
        let items: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        m += c.assess_batch(&items).iter().filter(|r| r.is_ok()).count();
    }
    let secs = t2.elapsed().as_secs_f64();
    println!(
        "{{\"fotovakt\":\"assess_batch(16), {threads} threads (bytes in memory)\",\"photos\":{m},\"photos_per_s\":{:.1},\"peak_rss_mb\":{:.1}}}",
        m as f64 / secs,
        peak_rss_mb()
    );
}

fn main() {
    let files = photos();
    summary(&files);
    let mut crit = Criterion::default().configure_from_args().sample_size(20);
    let mut c = Classifier::load(&Settings::default()).expect("load");
    let one = std::fs::read(&files[0]).expect("read");
    crit.bench_function("assess_12mp_thumbnail_first_1thread", |b| b.iter(|| c.assess(&one).expect("assess")));
    let mut slow = Classifier::load(&Settings { thumbnail_first: false, ..Settings::default() }).expect("load");
    crit.bench_function("assess_12mp_scaled_decode_1thread", |b| b.iter(|| slow.assess(&one).expect("assess")));
    crit.final_summary();
}
