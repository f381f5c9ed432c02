//! The backbone alone: the ONNX model file, its SHA-256, and one ONNX Runtime session that
//! turns prepared inputs into ImageNet logits and the pooled embedding.
//!
//! The agent's [`super::Classifier`] puts a head on top of it; `fotovakt head fit`
//! ([`super::fit`]) uses it bare, to embed an agency's photos for a new head. Both load it
//! here, so both run the very same session options (exact int8 kernels, threads).
//!
//! The model file is read once, hashed, and the session is built from those bytes: the
//! SHA-256 a head is checked against is the SHA-256 of what runs, never of a file that
//! could have changed between hashing and loading.

use std::path::{Path, PathBuf};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};

use super::{decode, find_default, model_dirs, runtime, ClassifyError, Settings, EXACT_INT8_KEY, MODEL_FILE};

/// Number of ImageNet classes of the model's `logits` output.
pub const CLASSES: usize = 1000;

/// What the model says about a batch: row-major `[n, 1000]` logits and `[n, dim]` embeddings.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub n: usize,
    pub logits: Vec<f32>,
    pub embedding: Vec<f32>,
    pub dim: usize,
}

impl Outputs {
    /// The ImageNet logits of input `k`.
    pub fn logits(&self, k: usize) -> &[f32] {
        &self.logits[k * CLASSES..(k + 1) * CLASSES]
    }

    /// The pooled embedding of input `k`.
    pub fn embedding(&self, k: usize) -> &[f32] {
        &self.embedding[k * self.dim..(k + 1) * self.dim]
    }
}

/// The loaded model: load once, run many batches.
pub struct Backbone {
    session: Session,
    model_path: PathBuf,
    model_sha256: String,
    ort_dylib: PathBuf,
}

/// The model file the settings name, else the default one found beside the binary or in `models/`.
pub fn model_path(settings: &Settings) -> Result<PathBuf, ClassifyError> {
    match &settings.model {
        Some(p) => Ok(p.clone()),
        None => find_default(MODEL_FILE).ok_or_else(|| ClassifyError::Model {
            path: PathBuf::from("models").join(MODEL_FILE),
            reason: format!("not found in {:?}", model_dirs()),
        }),
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Backbone {
    /// Load ONNX Runtime and the model named by `settings` (or the default one).
    pub fn load(settings: &Settings) -> Result<Backbone, ClassifyError> {
        let model_path = model_path(settings)?;
        let model_err = |reason: String| ClassifyError::Model { path: model_path.clone(), reason };
        let bytes = std::fs::read(&model_path).map_err(|e| model_err(e.to_string()))?;
        let model_sha256 = sha256_hex(&bytes);
        let (env, dylib) = runtime::environment(settings.ort_dylib.as_deref())?;
        let session = Session::builder(env)
            .map_err(|e| model_err(e.to_string()))?
            .with_intra_threads(settings.threads.max(1))
            .map_err(|e| model_err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| model_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| model_err(e.to_string()))?
            // x86 CPUs with AVX2 but no VNNI multiply u8 x s8 pairs into a saturating 16-bit sum
            // (VPMADDUBSW): there this int8 model's embedding drifts from what a phone (ARM) or a
            // VNNI CPU computes (median cosine 0.92, 9 of 58 camera-file decisions flipped). This
            // makes ONNX Runtime use exact u8 x u8 kernels on such CPUs; elsewhere it is a no-op.
            .with_config_entry(EXACT_INT8_KEY, "1")
            .map_err(|e| model_err(e.to_string()))?
            .commit_from_memory(&bytes)
            .map_err(|e| model_err(e.to_string()))?;
        Ok(Backbone { session, model_path, model_sha256, ort_dylib: dylib.to_path_buf() })
    }

    /// The model file in use.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// SHA-256 (hex) of the model bytes the session was built from.
    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// The ONNX Runtime library in use.
    pub fn ort_dylib(&self) -> &Path {
        &self.ort_dylib
    }

    /// Run the model on prepared inputs (each `[3, 224, 224]`, see [`decode::Prepared`]).
    pub fn run(&mut self, inputs: &[Vec<f32>]) -> Result<Outputs, ClassifyError> {
        let n = inputs.len();
        let plane = 3 * decode::SIDE * decode::SIDE;
        if inputs.iter().any(|v| v.len() != plane) {
            return Err(ClassifyError::Inference("an input is not 3x224x224".into()));
        }
        let mut flat = Vec::with_capacity(n * plane);
        inputs.iter().for_each(|v| flat.extend_from_slice(v));
        let tensor = TensorRef::from_array_view(([n, 3, decode::SIDE, decode::SIDE], &flat[..]))
            .map_err(|e| ClassifyError::Inference(e.to_string()))?;
        let outputs =
            self.session.run(ort::inputs!["input" => tensor]).map_err(|e| ClassifyError::Inference(e.to_string()))?;
        let logits = output(&outputs, "logits")?;
        let embedding = output(&outputs, "embedding")?;
        if n == 0 || logits.len() != n * CLASSES || embedding.len() % n != 0 || embedding.is_empty() {
            return Err(ClassifyError::Inference("unexpected output shapes".into()));
        }
        Ok(Outputs { n, dim: embedding.len() / n, logits: logits.to_vec(), embedding: embedding.to_vec() })
    }
}

/// One model output, by name, as a flat slice.
fn output<'a>(outputs: &'a ort::session::SessionOutputs<'_>, name: &str) -> Result<&'a [f32], ClassifyError> {
    let value = outputs.get(name).ok_or_else(|| ClassifyError::Inference(format!("model has no output {name}")))?;
    let (_, data) = value.try_extract_tensor::<f32>().map_err(|e| ClassifyError::Inference(e.to_string()))?;
    Ok(data)
}
