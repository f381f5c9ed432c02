//! The classifier's embedding is ONNX Runtime's exact int8 result on whatever CPU runs it.
//!
//! x86 CPUs with AVX2 but without VNNI compute the int8 model's u8 x s8 products with a
//! saturating 16-bit sum (VPMADDUBSW), unless the session asks for exact kernels
//! (`classify::EXACT_INT8_KEY`). A phone (ARM) and a VNNI CPU are exact anyway; the head is
//! trained on exact embeddings (`models/train_head.py` sets the same option). This test runs
//! the committed demo photos through the agent and, independently, through Python's
//! onnxruntime on the same 224x224 pixels with the exact kernels, and requires the two
//! embeddings to agree. It also prints how far ONNX Runtime's default kernels are on this CPU
//! (on an AVX2-only x86 machine: a cosine of about 0.9; elsewhere 1.0).
//!
//! Needs python3 with onnxruntime (scripts/test installs it; numpy comes with it).

use std::path::{Path, PathBuf};
use std::process::Command;

use fotovakt::classify::{Classifier, Settings, EXACT_INT8_KEY, MODEL_FILE};
use image::imageops::FilterType;

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

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

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

    let mut c = Classifier::load(&Settings::default()).expect("classifier loads");
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
