//! Measure the refine window per thumbnail size (issue 12, part 2).
//!
//! A JPEG's EXIF thumbnail is scored first; a score near the threshold is re-scored from
//! the photo itself (`classify::refine_window`). This tool scores every labelled photo of a
//! folder (default `../shared/data/eval-dev`, the head's training photos; read, never
//! copied) from the photo (the scaled decode) and from thumbnails: the photo's own EXIF
//! thumbnail when it has one, and thumbnails made the way cameras make them (the photo
//! resized to 160, 320 and 512 px on its long side, JPEG q75). Per size class it reports,
//! with 5-fold cross-validation grouped by photo, the smallest window that loses no case
//! photo the photo-only path finds, and how many photos each window sends to the refine
//! decode; and what the window in the code does.
//!
//!     cargo run --release --example refine_window [-- DATA_DIR]

use std::path::{Path, PathBuf};

use fotovakt::classify::{refine_window, Classifier, Settings};
use fotovakt::media::ExifFacts;

struct Row {
    photo: usize,
    case: bool,
    /// thumbnail short side, px
    short: u32,
    thumb: f32,
    full: f32,
}

fn jpeg(img: &image::RgbImage, q: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode_image(img).expect("in-memory encode");
    out
}

fn class_of(short: u32) -> &'static str {
    match short {
        0..=150 => "short side <= 150 (160x120)",
        151..=300 => "short side 151-300 (320x240)",
        _ => "short side > 300 (512x384)",
    }
}

/// Decisions of the thumbnail-first path with window (low factor, high margin).
fn decide(r: &Row, t: f32, low: f32, high: f32) -> (bool, bool) {
    let refine = r.thumb >= t * low && r.thumb < (t + high).min(0.97);
    let case = if refine { r.full >= t } else { r.thumb >= t };
    (case, refine)
}

/// The smallest window over `rows` that keeps every photo-path case photo a case, and
/// changes no photo-path non-case one into a case: (low, high).
fn fit(rows: &[&Row], t: f32) -> (f32, f32) {
    let mut low: f32 = 1.0;
    let mut high: f32 = 0.0;
    for r in rows {
        if r.full >= t && r.thumb < t {
            low = low.min(r.thumb / t);
        }
        if r.full < t && r.thumb >= t {
            high = high.max(r.thumb - t + 1e-3);
        }
    }
    // a margin: 10 % below the lowest case photo's thumbnail score, 0.02 above the highest
    // non-case one
    ((low * 0.9).max(0.0), if high > 0.0 { high + 0.02 } else { 0.0 })
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eval-dev"));
    let labels = std::fs::read_to_string(data.join("labels.tsv")).expect("labels.tsv");
    let mut c = Classifier::load(&Settings { thumbnail_first: false, ..Settings::default() }).expect("classifier");
    let t = c.threshold();
    let mut rows = Vec::new();
    let mut photos = 0;
    for line in labels.lines().skip(1) {
        let mut f = line.split('\t');
        let (Some(path), Some(label)) = (f.next(), f.next()) else { continue };
        let Ok(bytes) = std::fs::read(data.join(path)) else { continue };
        let Ok(img) = image::load_from_memory(&bytes) else { continue };
        let img = img.to_rgb8();
        // the photo as a camera JPEG (PNGs re-encoded), scored without a thumbnail
        let photo = if bytes.starts_with(&[0xFF, 0xD8]) { bytes.clone() } else { jpeg(&img, 90) };
        let Ok(full) = c.assess(&photo) else { continue };
        let case = label == "case";
        let mut thumbs: Vec<Vec<u8>> = Vec::new();
        if let Some(r) = ExifFacts::parse(&bytes).thumbnail {
            thumbs.push(bytes[r].to_vec());
        }
        for long in [160u32, 320, 512] {
            let (w, h) = img.dimensions();
            let s = f64::from(long) / f64::from(w.max(h));
            let (tw, th) = (((f64::from(w) * s).round() as u32).max(1), ((f64::from(h) * s).round() as u32).max(1));
            if tw.max(th) >= w.max(h) {
                continue;
            }
            let small = image::imageops::resize(&img, tw, th, image::imageops::FilterType::Triangle);
            thumbs.push(jpeg(&small, 75));
        }
        for th in thumbs {
            // the thumbnail path decodes the thumbnail JPEG alone, as this does
            let Ok(dim) = image::load_from_memory(&th).map(|i| (i.width(), i.height())) else { continue };
            let short = dim.0.min(dim.1);
            if short < fotovakt::classify::decode::MIN_THUMB_SIDE {
                continue;
            }
            let Ok(a) = c.assess(&th) else { continue };
            rows.push(Row { photo: photos, case, short, thumb: a.model_score, full: full.model_score });
        }
        photos += 1;
    }
    println!("{photos} photos, {} thumbnails, threshold {t:.3}", rows.len());
    for class in ["short side <= 150 (160x120)", "short side 151-300 (320x240)", "short side > 300 (512x384)"] {
        let rs: Vec<&Row> = rows.iter().filter(|r| class_of(r.short) == class).collect();
        if rs.is_empty() {
            continue;
        }
        let found_full = rs.iter().filter(|r| r.case && r.full >= t).count();
        let cases = rs.iter().filter(|r| r.case).count();
        let report = |name: &str, low: f32, high: f32, test: &[&Row]| {
            let (mut lost, mut gained_fp, mut refined) = (0, 0, 0);
            for r in test {
                let (case, refine) = decide(r, t, low, high);
                refined += usize::from(refine);
                lost += usize::from(r.case && r.full >= t && !case);
                gained_fp += usize::from(!r.case && r.full < t && case);
            }
            (name.to_string(), lost, gained_fp, refined)
        };
        let (cl, ch) = refine_window(rs[0].short);
        let (name, lost, fp, refined) = report("in the code", cl, ch, &rs);
        println!(
            "{class}: {} thumbnails, {cases} of case photos, photo path finds {found_full}; window {name} [{cl:.2}*t, t+{ch:.2}): {lost} case photos lost, {fp} extra false positives, {refined} refined ({:.0} %)",
            rs.len(),
            100.0 * refined as f64 / rs.len() as f64
        );
        // 5-fold CV, grouped by photo: fit on four folds, count on the fifth
        let (mut lost, mut fp, mut refined) = (0, 0, 0);
        let mut fits = Vec::new();
        for k in 0..5 {
            let train: Vec<&Row> = rs.iter().copied().filter(|r| r.photo % 5 != k).collect();
            let test: Vec<&Row> = rs.iter().copied().filter(|r| r.photo % 5 == k).collect();
            let (lo, hi) = fit(&train, t);
            fits.push((lo, hi));
            let (_, l, f, n) = report("cv", lo, hi, &test);
            lost += l;
            fp += f;
            refined += n;
        }
        let (lo, hi) = fit(&rs, t);
        println!(
            "  fitted on all: [{lo:.2}*t, t+{hi:.2}); out-of-fold: {lost} case photos lost, {fp} extra false positives, {refined} refined ({:.0} %); per-fold fits {:?}",
            100.0 * refined as f64 / rs.len() as f64,
            fits.iter().map(|(a, b)| format!("[{a:.2}, +{b:.2}]")).collect::<Vec<_>>()
        );
    }
}
