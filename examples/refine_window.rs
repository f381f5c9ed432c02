//! Measure the refine window per thumbnail size (issue 12, part 2).
//!
//! A JPEG's EXIF thumbnail is scored first; a score in `[threshold * low, threshold + high)`
//! is re-scored from the photo itself (`classify::refine_window`). This tool scores every
//! labelled photo of the head's training folders (default `../shared/data/eval-dev` and
//! `../shared/data/train-extra`; read, never copied) from the photo (the scaled decode,
//! what the photo-only path scores) and from thumbnails: the photo's own EXIF thumbnail
//! where it has a usable one (>= 96 px short side, the photo's aspect), and thumbnails made
//! the way cameras make them (the photo resized to 160, 320 and 512 px on its long side,
//! JPEG q75). Each thumbnail is scored as the thumbnail path scores it: decoded alone, the
//! photo's EXIF orientation applied; its size class is the short side of that decode (what
//! `refine_window` is given). The real thumbnails are checked against the classifier's own
//! thumbnail-first path.
//!
//! The head was trained on these photos, so their thumbnail and photo scores agree better
//! than a new photo's would (no case photo's thumbnail falls below the threshold while its
//! photo is above). So the real camera files of `../shared/data/exif-samples` (not training
//! photos, no labels) join them, with their own EXIF thumbnails and camera-made ones; their
//! "case" is the photo path's decision, their source the file's folder in its repository.
//!
//! Per size class it reports what the window in the code and the old window (0.4, 0.3) do
//! (training, held out, real EXIF thumbnails apart), and chooses a window: `low` is the
//! smallest thumbnail score (as a fraction of the threshold) of a case photo that the photo
//! path finds and the thumbnail alone misses, times a margin factor: the narrowest of a grid
//! that loses no case photo out of fold, in 5-fold CV grouped by photo and in
//! leave-one-source-out CV (grouped by `source_repo`), then one step wider; `high` is the
//! largest thumbnail score above the threshold of a personal photo that the photo path
//! leaves out, plus the narrowest margin adding no false positive out of fold. The
//! recommended window is the fit on all photos with those margins, rounded outward to 0.05;
//! the last lines are `classify::REFINE_WINDOWS` to ship. `--dump FILE` writes the scores
//! (numbers only) as TSV.
//!
//!     cargo run --release --example refine_window [-- DATA_DIR... [--held-out DIR] [--dump FILE]]

use std::path::{Path, PathBuf};

use fotovakt::classify::decode::{decode_jpeg_scaled, with_exif, Source, MIN_THUMB_SIDE, SIDE};
use fotovakt::classify::{refine_window, Classifier, Settings};
use fotovakt::media::ExifFacts;

/// Which fold a row belongs to.
type Group = dyn Fn(&Row) -> usize;

struct Row {
    photo: usize,
    source: usize,
    case: bool,
    /// the photo's own EXIF thumbnail (else camera-made)
    real: bool,
    /// a held-out camera file (`case`: the photo path's decision)
    held: bool,
    /// thumbnail short side as decoded for the model, px
    short: u32,
    thumb: f32,
    full: f32,
}

const CLASSES: [(&str, u32, u32); 3] = [
    ("short <= 150 (160x120)", 0, 150),
    ("short 151-300 (320x240)", 151, 300),
    ("short > 300 (512x384)", 301, u32::MAX),
];
/// Margin grids, narrowest first: factor on `low`, addition to `high`.
const LOW_MARGINS: [f32; 10] = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0];
const HIGH_MARGINS: [f32; 8] = [0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0];

fn jpeg(img: &image::RgbImage, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode_image(img).expect("in-memory encode");
    out
}

/// Out-of-fold (or in-sample) counts of the thumbnail-first path against the photo path.
#[derive(Default, Clone, Copy)]
struct Counts {
    /// case photos the photo path finds and the thumbnail path misses
    lost: usize,
    /// personal photos the thumbnail path takes and the photo path does not
    fp: usize,
    refined: usize,
    n: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.lost += o.lost;
        self.fp += o.fp;
        self.refined += o.refined;
        self.n += o.n;
    }
    fn show(&self) -> String {
        let pct = 100.0 * self.refined as f64 / self.n.max(1) as f64;
        format!("lost {}, extra FP {}, refined {}/{} ({pct:.0} %)", self.lost, self.fp, self.refined, self.n)
    }
}

/// The thumbnail-first decision with window (low factor, high margin): (case, refined).
/// Same test as `Classifier::near_threshold`.
fn decide(r: &Row, t: f32, low: f32, high: f32) -> (bool, bool) {
    let refine = r.thumb >= t * low && r.thumb < (t + high).min(0.97);
    (if refine { r.full >= t } else { r.thumb >= t }, refine)
}

fn evaluate(rows: &[&Row], t: f32, (low, high): (f32, f32)) -> Counts {
    let mut c = Counts { n: rows.len(), ..Counts::default() };
    for r in rows {
        let (case, refine) = decide(r, t, low, high);
        c.refined += usize::from(refine);
        c.lost += usize::from(r.case && r.full >= t && !case);
        c.fp += usize::from(!r.case && r.full < t && case);
    }
    c
}

/// The fit without margins: (lowest thumbnail score / t of a case photo the photo path
/// finds and the thumbnail misses, or 1; highest thumbnail score - t of a personal photo
/// the photo path leaves out and the thumbnail takes, or none).
fn fit_raw(rows: &[&Row], t: f32) -> (f32, Option<f32>) {
    let mut low: f32 = 1.0;
    let mut high: Option<f32> = None;
    for r in rows {
        if r.case && r.full >= t && r.thumb < t {
            low = low.min(r.thumb / t);
        }
        if !r.case && r.full < t && r.thumb >= t {
            high = Some(high.unwrap_or(0.0).max(r.thumb - t));
        }
    }
    (low, high)
}

fn fit(rows: &[&Row], t: f32, lm: f32, hm: f32) -> (f32, f32) {
    let (low, high) = fit_raw(rows, t);
    (low * lm, high.map_or(0.0, |h| h + hm))
}

/// Out-of-fold counts with folds given by `group`: each fold scored with the window
/// `window` fits on the other folds.
fn cv(rows: &[&Row], t: f32, window: &dyn Fn(&[&Row]) -> (f32, f32), group: &Group) -> Counts {
    let mut groups: Vec<usize> = rows.iter().map(|r| group(r)).collect();
    groups.sort_unstable();
    groups.dedup();
    let mut total = Counts::default();
    for g in groups {
        let train: Vec<&Row> = rows.iter().copied().filter(|r| group(r) != g).collect();
        let test: Vec<&Row> = rows.iter().copied().filter(|r| group(r) == g).collect();
        total.add(evaluate(&test, t, window(&train)));
    }
    total
}

/// The thumbnails of one photo: (JPEG bytes, real EXIF thumbnail).
fn thumbnails(bytes: &[u8], img: &image::RgbImage) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    if let Some(r) = ExifFacts::parse(bytes).thumbnail {
        out.push((bytes[r].to_vec(), true));
    }
    let (w, h) = img.dimensions();
    for long in [160u32, 320, 512] {
        let s = f64::from(long) / f64::from(w.max(h));
        let (tw, th) = (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
        if tw.max(th) >= w.max(h) {
            continue;
        }
        let small = image::imageops::resize(img, tw, th, image::imageops::FilterType::Triangle);
        out.push((jpeg(&small, 75), false));
    }
    out
}

/// The short side the thumbnail path would pass to `refine_window`, if it takes this
/// thumbnail of a `w` x `h` photo at all (as `decode::thumbnail` decides).
fn usable_short(th: &[u8], w: u32, h: u32) -> Option<u32> {
    let (_, tw, tt, _) = decode_jpeg_scaled(th, SIDE as u32).ok()?;
    let aspect = (f64::from(w) / f64::from(h)) / (f64::from(tw) / f64::from(tt));
    (tw.min(tt) >= MIN_THUMB_SIDE && (aspect - 1.0).abs() <= 0.04).then_some(tw.min(tt))
}

/// The thumbnail path's (short side, score) for thumbnail `th` of a `w` x `h` photo with
/// EXIF `orientation`, if it takes the thumbnail: decoded alone with the photo's
/// orientation, as `decode::thumbnail` does.
fn score_thumb(c: &mut Classifier, th: &[u8], (w, h): (u32, u32), orientation: u16) -> Option<(u32, f32)> {
    let short = usable_short(th, w, h)?;
    let oriented = with_exif(th, orientation, None)?;
    Some((short, c.assess(&oriented).ok()?.model_score))
}

fn source_index(sources: &mut Vec<String>, name: String) -> usize {
    sources.iter().position(|s| *s == name).unwrap_or_else(|| {
        sources.push(name);
        sources.len() - 1
    })
}

/// The real camera files of `dir` (no labels) with a usable EXIF thumbnail, as rows whose
/// `case` is the photo path's decision: `lost` and `fp` then count the photos the
/// thumbnail path decides the other way.
fn held_out(dir: &Path, t: f32, first: usize, sources: &mut Vec<String>) -> Vec<Row> {
    let mut c = Classifier::load(&Settings { thumbnail_first: false, ..Settings::default() }).expect("classifier");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    let mut rows = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Ok(bytes) = std::fs::read(f) else { continue };
        if !bytes.starts_with(&[0xFF, 0xD8]) {
            continue;
        }
        let (Ok(img), Ok(full)) = (image::load_from_memory(&bytes), c.assess(&bytes)) else { continue };
        let img = img.to_rgb8();
        let orientation = ExifFacts::parse(&bytes).orientation.unwrap_or(1);
        // the source: the file's folder in its repository (the name's first two `__` parts)
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let source = source_index(sources, name.split("__").take(2).collect::<Vec<_>>().join("/"));
        for (th, real) in thumbnails(&bytes, &img) {
            let Some((short, thumb)) = score_thumb(&mut c, &th, img.dimensions(), orientation) else { continue };
            let (photo, case) = (first + i, full.model_score >= t);
            rows.push(Row { photo, source, case, real, held: true, short, thumb, full: full.model_score });
        }
    }
    rows
}

struct Data {
    rows: Vec<Row>,
    photos: usize,
    sources: Vec<String>,
    /// real thumbnails: (checked against the thumbnail-first path, agreeing)
    check: (usize, usize),
    t: f32,
}

fn load(dirs: &[PathBuf]) -> Data {
    let mut c = Classifier::load(&Settings { thumbnail_first: false, ..Settings::default() }).expect("classifier");
    let mut tf = Classifier::load(&Settings { thumbnail_first: true, ..Settings::default() }).expect("classifier");
    let t = c.threshold();
    let mut d = Data { rows: Vec::new(), photos: 0, sources: Vec::new(), check: (0, 0), t };
    for dir in dirs {
        let labels = std::fs::read_to_string(dir.join("labels.tsv")).expect("labels.tsv");
        for line in labels.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let (Some(path), Some(label)) = (f.first(), f.get(1)) else { continue };
            let source = f.get(3).copied().unwrap_or("?").to_string();
            let Ok(bytes) = std::fs::read(dir.join(path)) else { continue };
            let Ok(img) = image::load_from_memory(&bytes) else { continue };
            // stored orientation, as a camera stores photo and thumbnail
            let img = img.to_rgb8();
            let (w, h) = img.dimensions();
            // the photo as a camera JPEG (PNGs re-encoded), scored without a thumbnail
            let photo = if bytes.starts_with(&[0xFF, 0xD8]) { bytes.clone() } else { jpeg(&img, 90) };
            let Ok(full) = c.assess(&photo) else { continue };
            let orientation = ExifFacts::parse(&photo).orientation.unwrap_or(1);
            let si = source_index(&mut d.sources, source);
            for (th, real) in thumbnails(&bytes, &img) {
                let Some((short, thumb)) = score_thumb(&mut c, &th, (w, h), orientation) else { continue };
                let row = Row {
                    photo: d.photos,
                    source: si,
                    case: *label == "case",
                    real,
                    held: false,
                    short,
                    thumb,
                    full: full.model_score,
                };
                if real {
                    // the classifier's own thumbnail-first path must give what this row predicts
                    let (low, high) = refine_window(short);
                    let refined = decide(&row, t, low, high).1;
                    if let Ok(b) = tf.assess(&bytes) {
                        let want = if refined { (Source::Scaled, row.full) } else { (Source::Thumbnail, row.thumb) };
                        d.check.0 += 1;
                        d.check.1 += usize::from(b.source == want.0 && (b.model_score - want.1).abs() < 1e-4);
                    }
                }
                d.rows.push(row);
            }
            d.photos += 1;
        }
    }
    d
}

/// The narrowest margin of `grid` whose CV passes `ok`, as an index into `grid`.
fn choose(grid: &[f32], ok: &dyn Fn(f32) -> bool) -> Option<usize> {
    grid.iter().position(|&m| ok(m))
}

fn round_out((low, high): (f32, f32)) -> (f32, f32) {
    // a high margin past 1 is the same window as 1: the window stops at 0.97 anyway
    (((low / 0.05).floor() * 0.05).max(0.0), ((high / 0.05).ceil() * 0.05).min(1.0))
}

/// Report one size class and return the recommended window.
fn report_class(name: &str, rs: &[&Row], t: f32) -> (f32, f32) {
    let part = |f: &dyn Fn(&Row) -> bool| -> Vec<&Row> { rs.iter().copied().filter(|r| f(r)).collect() };
    let (train, held, real) = (part(&|r| !r.held), part(&|r| r.held), part(&|r| r.real));
    let photos: std::collections::BTreeSet<usize> = rs.iter().map(|r| r.photo).collect();
    println!(
        "\n{name}: {} thumbnails of {} photos: training {} ({} case, all found by the photo path: {}), held out {}; real EXIF {}",
        rs.len(),
        photos.len(),
        train.len(),
        train.iter().filter(|r| r.case).count(),
        train.iter().filter(|r| r.case).all(|r| r.full >= t),
        held.len(),
        real.len()
    );
    let by_photo = |r: &Row| r.photo % 5;
    let by_source = |r: &Row| r.source;
    let groupings: [(&str, &Group); 2] = [("5-fold by photo", &by_photo), ("leave-one-source-out", &by_source)];
    let passes = |f: &dyn Fn(Counts) -> bool, lm: f32, hm: f32| {
        groupings.iter().all(|(_, g)| f(cv(rs, t, &|train| fit(train, t, lm, hm), *g)))
    };
    // the narrowest low margin losing no case photo out of fold, then one step wider
    let li = choose(&LOW_MARGINS, &|m| passes(&|c| c.lost == 0, m, 1.0));
    let lm = li.map_or(0.0, |i| LOW_MARGINS[(i + 1).min(LOW_MARGINS.len() - 1)]);
    // the narrowest high margin adding no false positive out of fold
    let hm = choose(&HIGH_MARGINS, &|m| passes(&|c| c.fp == 0, 0.0, m)).map_or(1.0, |i| HIGH_MARGINS[i]);
    let (raw_low, raw_high) = fit_raw(rs, t);
    let (lo, hi) = fit(rs, t, lm, hm);
    let rec = round_out((lo, hi));
    println!(
        "  fit on all, no margin: low {raw_low:.3}*t, high {}; margins: low x{lm} (CV passes at x{}), high +{hm}; fit [{lo:.3}, +{hi:.3}]",
        raw_high.map_or("none".to_string(), |h| format!("t+{h:.3}")),
        li.map_or("none".into(), |i| LOW_MARGINS[i].to_string()),
    );
    let code = refine_window(rs[0].short);
    for (what, w) in [("in the code", code), ("old (0.4, 0.3)", (0.4, 0.3)), ("RECOMMENDED", rec)] {
        println!("  {what} [{:.2}*t, t+{:.2}):", w.0, w.1);
        for (set, sub) in [("training", &train), ("held out", &held), ("real EXIF", &real), ("all", &rs.to_vec())] {
            if !sub.is_empty() {
                println!("    {set:<9} {}", evaluate(sub, t, w).show());
            }
        }
    }
    for (g, grp) in groupings {
        println!(
            "  CV {g}, the rule out of fold: {}",
            cv(rs, t, &|train| round_out(fit(train, t, lm, hm)), grp).show()
        );
    }
    rec
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--").collect();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let mut opt = |name: &str| {
        let i = args.iter().position(|a| a == name)?;
        let v = args.get(i + 1).map(PathBuf::from);
        args.drain(i..(i + 2).min(args.len()));
        v
    };
    let held = opt("--held-out").unwrap_or_else(|| data.join("exif-samples"));
    let dump = opt("--dump");
    let mut dirs: Vec<PathBuf> = args.into_iter().map(PathBuf::from).collect();
    if dirs.is_empty() {
        dirs = vec![data.join("eval-dev"), data.join("train-extra")];
    }
    let mut d = load(&dirs);
    let t = d.t;
    println!(
        "training photos: {} from {} sources, {} thumbnails ({} real EXIF); threshold {t:.4}",
        d.photos,
        d.sources.len(),
        d.rows.len(),
        d.rows.iter().filter(|r| r.real).count()
    );
    println!(
        "real thumbnails checked against the classifier's thumbnail-first path: {} of {} agree",
        d.check.1, d.check.0
    );
    let held_rows = held_out(&held, t, d.photos, &mut d.sources);
    let held_photos: std::collections::BTreeSet<usize> = held_rows.iter().map(|r| r.photo).collect();
    println!(
        "held out: {} camera files of {}, {} thumbnails ({} real EXIF); the photo path takes {} files",
        held_photos.len(),
        held.display(),
        held_rows.len(),
        held_rows.iter().filter(|r| r.real).count(),
        held_photos.iter().filter(|&&p| held_rows.iter().any(|r| r.photo == p && r.case)).count()
    );
    d.rows.extend(held_rows);
    if let Some(path) = dump {
        let mut out = String::from("photo\tsource\tcase\treal\theld\tshort\tthumb\tfull\n");
        for r in &d.rows {
            out += &format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{:.5}\t{:.5}\n",
                r.photo, r.source, r.case, r.real, r.held, r.short, r.thumb, r.full
            );
        }
        std::fs::write(path, out).expect("dump");
    }
    let mut table = Vec::new();
    for (name, lo, hi) in CLASSES {
        let rs: Vec<&Row> = d.rows.iter().filter(|r| (lo..=hi).contains(&r.short)).collect();
        if !rs.is_empty() {
            table.push((hi, report_class(name, &rs, t)));
        }
    }
    println!("\nrecommended REFINE_WINDOWS (largest short side, low factor, high margin):");
    for (hi, (low, high)) in table {
        let hi = if hi == u32::MAX { "u32::MAX".to_string() } else { hi.to_string() };
        println!("    ({hi}, {low:.2}, {high:.2}),");
    }
}
