//! Classifier tests with the real ONNX Runtime and the shipped model: generated photos,
//! formats, orientation, the EXIF-thumbnail path, bad input, batching, and the exact int8
//! arithmetic on every CPU.
//!
//! ONNX Runtime comes from Python's `onnxruntime` package (or `ORT_DYLIB_PATH`); CI installs
//! it. Without it these tests fail with the one-line message telling how to get it.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use fotovakt::classify::{decode, Classifier, ClassifyError, Settings, Source, EXACT_INT8_KEY, MODEL_FILE};
use image::imageops::FilterType;
use image::{ImageFormat, Rgb, RgbImage};

/// One classifier for the whole test binary (loading ONNX Runtime is once per process).
fn classifier() -> MutexGuard<'static, Classifier> {
    static C: OnceLock<Mutex<Classifier>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(Classifier::load(&Settings::default()).expect("classifier loads")))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A structured test picture: gradients, a bright disc top-left, stripes bottom-right.
fn picture(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let d = ((fx - 0.25).powi(2) + (fy - 0.3).powi(2)).sqrt();
        if d < 0.12 {
            Rgb([250, 220, 40])
        } else if fx > 0.6 && fy > 0.6 && (x / 9) % 2 == 0 {
            Rgb([20, 20, 160])
        } else {
            Rgb([(fx * 200.0) as u8, (fy * 180.0) as u8, 90])
        }
    })
}

fn encode(img: &image::DynamicImage, fmt: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, fmt).expect("encode");
    out.into_inner()
}

fn jpeg(img: &RgbImage) -> Vec<u8> {
    encode(&image::DynamicImage::ImageRgb8(img.clone()), ImageFormat::Jpeg)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn scores_a_generated_jpeg() {
    let mut c = classifier();
    let a = c.assess(&jpeg(&picture(640, 480))).expect("assess");
    assert!((0.0..=1.0).contains(&a.case_score), "score {}", a.case_score);
    assert!(a.threshold > 0.0 && a.threshold < 1.0, "threshold {} from the head file", a.threshold);
    assert_eq!(a.labels.len(), 3);
    assert!(a.labels[0].p >= a.labels[1].p && a.labels[1].p >= a.labels[2].p);
    assert!(a.labels.iter().all(|l| !l.label.is_empty() && !l.label.starts_with("class ")));
    assert_eq!(a.embedding.len(), 1280);
    assert!(a.decode_ms > 0.0 && a.infer_ms > 0.0);
    assert_eq!(a.source, Source::Scaled);
    assert_eq!(a.case_score, a.model_score, "no corrections set");
}

#[test]
fn exif_orientation_is_applied() {
    let mut c = classifier();
    let upright = picture(600, 400);
    // stored rotated 90 degrees counter-clockwise, tagged 6 (display rotated 90 clockwise)
    let stored = image::imageops::rotate270(&upright);
    let tagged = decode::with_exif(&jpeg(&stored), 6, None).expect("exif block");
    let untagged = jpeg(&stored);
    let ref_emb = c.assess(&jpeg(&upright)).expect("upright").embedding;
    let tagged_emb = c.assess(&tagged).expect("tagged").embedding;
    let untagged_emb = c.assess(&untagged).expect("untagged").embedding;
    let good = cosine(&ref_emb, &tagged_emb);
    let bad = cosine(&ref_emb, &untagged_emb);
    assert!(good > 0.97, "oriented photo should match the upright one: cosine {good}");
    assert!(good > bad + 0.02, "orientation must matter: tagged {good} vs untagged {bad}");
    // all eight orientations decode to the same upright picture
    let variants: [(u16, RgbImage); 8] = [
        (1, upright.clone()),
        (2, image::imageops::flip_horizontal(&upright)),
        (3, image::imageops::rotate180(&upright)),
        (4, image::imageops::flip_vertical(&upright)),
        (5, image::imageops::flip_horizontal(&image::imageops::rotate90(&upright))),
        (6, image::imageops::rotate270(&upright)),
        (7, image::imageops::flip_horizontal(&image::imageops::rotate270(&upright))),
        (8, image::imageops::rotate90(&upright)),
    ];
    for (o, img) in variants {
        let bytes = decode::with_exif(&jpeg(&img), o, None).expect("exif");
        let e = c.assess(&bytes).expect("assess").embedding;
        let cs = cosine(&ref_emb, &e);
        assert!(cs > 0.97, "orientation {o}: cosine {cs}");
    }
}

#[test]
fn exif_thumbnail_is_the_fast_path() {
    let mut c = classifier();
    let big = picture(3000, 2250);
    let thumb = image::imageops::resize(&big, 160, 120, image::imageops::FilterType::Triangle);
    let photo = decode::with_exif(&jpeg(&big), 1, Some(&jpeg(&thumb))).expect("exif");
    let info = decode::jpeg_exif(&photo);
    assert_eq!(info.orientation, 1);
    let range = info.thumbnail.expect("thumbnail found");
    assert_eq!(&photo[range], &jpeg(&thumb)[..]);
    let fast = c.assess(&photo).expect("thumbnail path");
    assert!(matches!(fast.source, Source::Thumbnail | Source::Scaled));
    drop(c);
    let mut slow = Classifier::load(&Settings { thumbnail_first: false, ..Settings::default() }).expect("load");
    let full = slow.assess(&photo).expect("scaled path");
    assert_eq!(full.source, Source::Scaled);
    let cs = cosine(&fast.embedding, &full.embedding);
    if fast.source == Source::Scaled {
        // near the threshold: re-scored from the photo itself, the same decode as `full`
        assert!(cs > 0.99, "re-scored from the photo: cosine {cs}");
    } else {
        // decided from the 160x120 thumbnail (this synthetic picture's fine pattern is lost at
        // that size; real photos give ~0.9): a coarser view, and the same decision
        assert!(cs > 0.75, "thumbnail and photo agree: cosine {cs}");
        assert_eq!(fast.case_score >= fast.threshold, full.case_score >= full.threshold, "same decision");
    }
    // a letter-boxed (wrong aspect) thumbnail is not used
    let wide = picture(3200, 1800);
    let boxed = decode::with_exif(&jpeg(&wide), 1, Some(&jpeg(&thumb))).expect("exif");
    let mut c = classifier();
    assert_eq!(c.assess(&boxed).expect("assess").source, Source::Scaled);
}

#[test]
fn other_formats_and_colour_models() {
    let mut c = classifier();
    let img = image::DynamicImage::ImageRgb8(picture(320, 240));
    // lossless formats see the same pixels: same embedding; GIF's palette and JPEG's
    // quantisation shift it a little
    let reference = c.assess(&encode(&img, ImageFormat::Png)).expect("png").embedding;
    let mut q95 = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut q95, 95).encode_image(&img).expect("jpeg q95");
    for (fmt, bytes, min) in [
        (ImageFormat::WebP, encode(&img, ImageFormat::WebP), 0.999),
        (ImageFormat::Bmp, encode(&img, ImageFormat::Bmp), 0.999),
        (ImageFormat::Tiff, encode(&img, ImageFormat::Tiff), 0.999),
        (ImageFormat::Gif, encode(&img, ImageFormat::Gif), 0.8),
        (ImageFormat::Jpeg, q95, 0.75),
    ] {
        let a = c.assess(&bytes).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
        let want = if fmt == ImageFormat::Jpeg { Source::Scaled } else { Source::Full };
        assert_eq!(a.source, want);
        let cs = cosine(&reference, &a.embedding);
        eprintln!("{fmt:?} vs PNG: cosine {cs:.4}");
        assert!(cs > min, "{fmt:?} vs PNG cosine {cs}");
    }
    // RGBA PNG, grayscale JPEG, 16-bit PNG, odd sizes
    let rgba = image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(33, 517, |x, y| {
        image::Rgba([x as u8 * 7, y as u8, 99, if x > 16 { 255 } else { 0 }])
    }));
    c.assess(&encode(&rgba, ImageFormat::Png)).expect("rgba png");
    let gray = image::DynamicImage::ImageLuma8(image::imageops::grayscale(&picture(301, 199)));
    let a = c.assess(&encode(&gray, ImageFormat::Jpeg)).expect("gray jpeg");
    assert_eq!(a.source, Source::Scaled);
    let deep = image::DynamicImage::ImageRgb16(image::DynamicImage::ImageRgb8(picture(97, 61)).to_rgb16());
    c.assess(&encode(&deep, ImageFormat::Png)).expect("16-bit png");
    c.assess(&jpeg(&picture(1, 1))).expect("1x1 jpeg");
    c.assess(&jpeg(&picture(5000, 3))).expect("5000x3 jpeg");
    // CMYK JPEG (written by Pillow, pure red): decoded as red
    let cmyk = include_bytes!("data/cmyk_red.jpg");
    let (rgb, w, h, _) = decode::decode_jpeg_scaled(cmyk, 224).expect("cmyk decodes");
    assert_eq!((w, h), (64, 48));
    let px = &rgb[(20 * 64 + 20) * 3..][..3];
    assert!(px[0] > 200 && px[1] < 60 && px[2] < 60, "CMYK red came out as {px:?}");
    c.assess(cmyk).expect("cmyk assess");
}

#[test]
fn bad_input_is_an_error_for_that_file() {
    let mut c = classifier();
    let good = jpeg(&picture(800, 600));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("zero bytes", Vec::new()),
        ("garbage", b"definitely not a picture, just some text".to_vec()),
        ("truncated jpeg", good[..good.len() / 3].to_vec()),
        ("jpeg header only", good[..200].to_vec()),
        ("corrupt jpeg", {
            let mut b = good.clone();
            for v in b.iter_mut().skip(700).step_by(3) {
                *v = 0xFF;
            }
            b
        }),
        ("png bomb", png_header(200_000, 200_000)),
        ("png 100k x 1", png_header(100_000, 1)),
        ("jpeg bomb", jpeg_with_size(&good, 65_000, 65_000)),
    ];
    for (what, bytes) in cases {
        match c.assess(&bytes) {
            Err(ClassifyError::Decode(_) | ClassifyError::Unsupported(_)) => {}
            Ok(a) if what == "corrupt jpeg" => assert!((0.0..=1.0).contains(&a.case_score)),
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }
    // HEIC and videos are refused with a clear reason, the agent decides them by context
    let heic = [&[0, 0, 0, 24][..], b"ftypheic", &[0; 12]].concat();
    let mp4 = [&[0, 0, 0, 24][..], b"ftypisom", &[0; 12]].concat();
    let mov = [&[0, 0, 0, 20][..], b"ftypqt  ", &[0; 8]].concat();
    for (b, want) in [(heic, "HEIC"), (mp4, "video"), (mov, "video")] {
        match c.assess(&b) {
            Err(e @ ClassifyError::Unsupported(_)) => {
                assert!(e.to_string().contains(want), "{e}");
                assert!(e.to_string().contains("context rules"), "{e}");
            }
            other => panic!("expected Unsupported({want}), got {other:?}"),
        }
    }
    // and the classifier still works after all that
    c.assess(&good).expect("still works");
}

fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&v[12..]);
    v.extend_from_slice(&crc.to_be_bytes());
    v
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// Rewrite the frame header (SOF0) of a baseline JPEG to claim another size.
fn jpeg_with_size(jpeg: &[u8], w: u16, h: u16) -> Vec<u8> {
    let mut b = jpeg.to_vec();
    let at = b.windows(2).position(|p| p == [0xFF, 0xC0]).expect("SOF0");
    b[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
    b[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    b
}

#[test]
fn batch_matches_single() {
    let mut c = classifier();
    let photos: Vec<Vec<u8>> = (0..5).map(|i| jpeg(&picture(200 + 50 * i, 300 - 20 * i))).collect();
    let mut items: Vec<&[u8]> = photos.iter().map(Vec::as_slice).collect();
    items.insert(2, b"broken");
    let batch = c.assess_batch(&items);
    assert_eq!(batch.len(), 6);
    assert!(batch[2].is_err());
    for (i, b) in [0usize, 1, 3, 4, 5].iter().zip(batch.iter().enumerate().filter(|(k, _)| *k != 2).map(|(_, r)| r)) {
        let single = c.assess(items[*i]).expect("single");
        let b = b.as_ref().expect("batch item");
        assert!((single.case_score - b.case_score).abs() < 1e-3, "item {i}");
        assert_eq!(single.labels[0].label, b.labels[0].label);
    }
}

// The embedding is ONNX Runtime's exact int8 result on whatever CPU runs it. x86 CPUs with AVX2
// but no VNNI sum the int8 model's u8 x s8 products in a saturating 16 bits (VPMADDUBSW) unless
// the session asks for exact kernels (`classify::EXACT_INT8_KEY`); a phone (ARM) and a VNNI CPU
// are exact anyway, and the head is trained on exact embeddings (`models/train_head.py` sets
// the same option). The committed demo photos go through the agent and, independently, through
// Python's onnxruntime (numpy comes with it) on the same 224x224 pixels with the exact kernels;
// the two embeddings must agree. It also prints how far ONNX Runtime's default kernels are on
// this CPU (on an AVX2-only x86 machine a cosine of about 0.9; elsewhere 1.0).

const REFERENCE: &str = r#"
import json, sys
import numpy as np, onnxruntime as ort
model, key, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
rgb = [np.fromfile(p, dtype=np.uint8).reshape(224, 224, 3) for p in paths]
x = np.stack([(a.astype(np.float32) - 127.0) / 128.0 for a in rgb])
x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
out = {}
for name, exact in (("exact", True), ("default", False)):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if exact:
        so.add_session_config_entry(key, "1")
    s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    out[name] = [s.run(["embedding"], {"input": x[i:i + 1]})[0][0].tolist() for i in range(len(paths))]
print(json.dumps(out))
"#;

/// The centre square of a demo photo at the model's 224x224, as a PNG for the agent (lossless,
/// already the model's size: no resize) and as raw RGB bytes for the reference: the same pixels.
fn square_png(src: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let img = image::open(src).expect("demo photo decodes").to_rgb8();
    let s = img.width().min(img.height());
    let crop = image::imageops::crop_imm(&img, (img.width() - s) / 2, (img.height() - s) / 2, s, s).to_image();
    let sq = image::imageops::resize(&crop, 224, 224, FilterType::Triangle);
    let png = dir.join(src.file_stem().expect("name")).with_extension("png");
    sq.save(&png).expect("write png");
    let raw = png.with_extension("rgb");
    std::fs::write(&raw, sq.as_raw()).expect("write raw");
    (png, raw)
}

#[test]
fn embedding_is_the_exact_int8_result_on_this_cpu() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos: Vec<(PathBuf, PathBuf)> = ["chelsea", "coffee", "coins", "text"]
        .iter()
        .map(|n| square_png(&root.join("examples/photos").join(format!("{n}.jpg")), tmp.path()))
        .collect();

    let mut c = classifier();
    let ours: Vec<Vec<f32>> = photos
        .iter()
        .map(|(png, _)| c.assess(&std::fs::read(png).expect("read png")).expect("assess").embedding)
        .collect();

    let out = Command::new("python3")
        .arg("-c")
        .arg(REFERENCE)
        .arg(root.join("models").join(MODEL_FILE))
        .arg(EXACT_INT8_KEY)
        .args(photos.iter().map(|(_, raw)| raw))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the Python reference failed (needs onnxruntime: `python3 -m pip install onnxruntime==1.31.1`, \
         as scripts/test does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reference JSON");
    let column = |name: &str| -> Vec<Vec<f32>> {
        reference[name]
            .as_array()
            .expect("array")
            .iter()
            .map(|e| e.as_array().expect("embedding").iter().map(|v| v.as_f64().expect("number") as f32).collect())
            .collect()
    };
    let (exact, default) = (column("exact"), column("default"));
    for (i, (p, _)) in photos.iter().enumerate() {
        assert_eq!(ours[i].len(), 1280);
        let to_exact = cosine(&ours[i], &exact[i]);
        let to_default = cosine(&ours[i], &default[i]);
        eprintln!(
            "{}: cosine to the exact int8 reference {to_exact:.6}, to ONNX Runtime's default kernels on this CPU {to_default:.6}",
            p.file_name().expect("name").to_string_lossy()
        );
        assert!(
            to_exact > 0.9999,
            "{}: the agent's embedding is not the exact int8 result: cosine {to_exact}",
            p.display()
        );
    }
}
