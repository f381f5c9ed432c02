//! Classifier benchmark (not a timed test): fotovakt beside the Python peer
//! (`bench/classify_peer.py --serve`: Pillow `draft` + onnxruntime, same int8 model, one
//! thread), alternating photo by photo in one run, reported per EXIF flavour.
//!
//! Photos: `FOTOVAKT_BENCH_PHOTOS` (default `/tmp/fotovakt-bench-flavours`), one subfolder
//! per flavour as `bench/classify_make_photos.py` writes them (`none`, `project`, `piexif`,
//! `exiftool`, `camera`), or a folder of JPEGs. Per photo and round: the peer, then
//! fotovakt with a 1-thread decode, then with a 2-thread decode (read + EXIF + decode +
//! infer, one intra-op thread each). The first round is a warm-up. Pin the whole run to
//! the cores you mean (`taskset -c 1` for the one-core figures; two cores for the
//! 2-thread decode): `bash bench/classify_bench.sh` does.
//!
//! Env: `FOTOVAKT_BENCH_ROUNDS` (default 3), `FOTOVAKT_BENCH_PEER=0` (fotovakt only),
//! `FOTOVAKT_BENCH_BACKLOG=1` (also the batch throughput on all cores).

#[path = "common/flavours.rs"]
mod flavours;

use std::path::{Path, PathBuf};
use std::time::Instant;

use flavours::{flavours, Peer};
use fotovakt::classify::{Classifier, Settings, Source};
use fotovakt::media::ExifFacts;

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Times and decode paths of one fotovakt configuration over a flavour.
#[derive(Default)]
struct Tally {
    total: Vec<f64>,
    decode: Vec<f64>,
    infer: Vec<f64>,
    thumbnail: usize,
    refined: usize,
    scaled: usize,
    full: usize,
    errors: usize,
}

impl Tally {
    fn run(&mut self, c: &mut Classifier, photo: &Path, timed: bool) {
        let t = Instant::now();
        let bytes = std::fs::read(photo).expect("read");
        let facts = ExifFacts::parse(&bytes);
        let r = c.assess_with(&bytes, Some(&facts));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !timed {
            return;
        }
        match r {
            Ok(a) => {
                self.total.push(ms);
                self.decode.push(a.decode_ms);
                self.infer.push(a.infer_ms);
                match a.source {
                    Source::Thumbnail => self.thumbnail += 1,
                    Source::Scaled if facts.thumbnail.is_some() => self.refined += 1,
                    Source::Scaled => self.scaled += 1,
                    Source::Full => self.full += 1,
                }
            }
            Err(_) => self.errors += 1,
        }
    }
}

fn load(decode_threads: usize) -> Classifier {
    Classifier::load(&Settings { threads: 1, decode_threads, ..Settings::default() }).expect("load classifier")
}

fn backlog(files: &[PathBuf]) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut c = Classifier::load(&Settings { threads, ..Settings::default() }).expect("load");
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    let t = Instant::now();
    let mut m = 0;
    for chunk in bytes.chunks(16) {
        let items: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        m += c.assess_batch(&items).iter().filter(|r| r.is_ok()).count();
    }
    println!(
        "{{\"fotovakt\":\"assess_batch(16), {threads} threads (bytes in memory)\",\"photos\":{m},\"photos_per_s\":{:.1}}}",
        m as f64 / t.elapsed().as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let root = std::env::var_os("FOTOVAKT_BENCH_PHOTOS")
        .map_or_else(|| PathBuf::from("/tmp/fotovakt-bench-flavours"), PathBuf::from);
    let rounds: usize = std::env::var("FOTOVAKT_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let mut peer = if std::env::var("FOTOVAKT_BENCH_PEER").is_ok_and(|v| v == "0") {
        None
    } else {
        Some(Peer::spawn().expect("python3 bench/classify_peer.py --serve (needs Pillow, numpy, onnxruntime)"))
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut one = load(1);
    let mut two = load(2);
    println!("# {cores} core(s) available to this run; {rounds} rounds, the first a warm-up; medians in ms");
    let mut all = Vec::new();
    for (flavour, files) in flavours(&root) {
        let (mut p, mut t1, mut t2, mut peer_errors) = (Vec::new(), Tally::default(), Tally::default(), 0);
        for round in 0..rounds {
            let timed = round > 0;
            for f in &files {
                if let Some(peer) = peer.as_mut() {
                    match peer.time(f) {
                        Some(ms) if timed => p.push(ms),
                        None if timed => peer_errors += 1,
                        _ => {}
                    }
                }
                t1.run(&mut one, f, timed);
                t2.run(&mut two, f, timed);
            }
        }
        let (pm, m1, m2) = (median(&p), median(&t1.total), median(&t2.total));
        println!(
            "{{\"flavour\":\"{flavour}\",\"photos\":{},\"peer_ms\":{pm:.2},\"fotovakt_1thread_ms\":{m1:.2},\"fotovakt_2thread_ms\":{m2:.2},\"ratio_1thread\":{:.2},\"ratio_2thread\":{:.2},\"decode_ms_1thread\":{:.2},\"decode_ms_2thread\":{:.2},\"infer_ms\":{:.2},\"paths\":{{\"thumbnail\":{},\"thumbnail_then_refined\":{},\"scaled\":{},\"full\":{}}},\"errors\":{{\"fotovakt\":{},\"peer\":{peer_errors}}}}}",
            files.len(),
            pm / m1,
            pm / m2,
            median(&t1.decode),
            median(&t2.decode),
            median(&t1.infer),
            t1.thumbnail,
            t1.refined,
            t1.scaled,
            t1.full,
            t1.errors,
        );
        all.extend(files);
    }
    println!("{{\"peak_rss_mb\":{:.1}}}", peak_rss_mb());
    if std::env::var("FOTOVAKT_BENCH_BACKLOG").is_ok_and(|v| v == "1") {
        backlog(&all);
    }
}
