//! On-device case-material classifier (EfficientNet-Lite0 through ONNX Runtime plus a small head).
//!
//! Seam owned by the classifier issue: the agent only needs [`Classifier::load`] and
//! [`Classifier::assess`]; everything else here is the classifier's business.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Settings of the classifier, the `[classifier]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Run the model at all. Default: true.
    pub enabled: bool,
    /// ONNX model file. Default: `models/efficientnet_lite0.int8.onnx` found beside the binary or in the source tree.
    pub model: Option<PathBuf>,
    /// Case head file. Default: `models/case_head.json` beside the model.
    pub head: Option<PathBuf>,
    /// ONNX Runtime shared library; default search: `ORT_DYLIB_PATH`, beside the binary, Python's `onnxruntime`.
    pub ort_dylib: Option<PathBuf>,
    /// Intra-op threads per session. Default: 1.
    pub threads: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { enabled: true, model: None, head: None, ort_dylib: None, threads: 1 }
    }
}

/// One ImageNet label with its probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Label {
    pub label: String,
    pub p: f32,
}

/// What the classifier says about one image.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// Probability-like score in 0..1 that this is case material.
    pub case_score: f32,
    /// The head's recommended threshold (recall-biased).
    pub threshold: f32,
    /// Top-3 ImageNet labels.
    pub labels: Vec<Label>,
    /// Pooled embedding `[1280]`, kept for officers' corrections.
    #[serde(skip)]
    pub embedding: Vec<f32>,
    pub decode_ms: f64,
    pub infer_ms: f64,
}

/// An officer's correction, replayed into the classifier so it adapts on the device.
#[derive(Debug, Clone)]
pub struct Correction {
    pub embedding: Vec<f32>,
    /// true: an officer tagged it as case material; false: released as a false positive.
    pub case: bool,
}

/// Why the classifier could not give an assessment.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("ONNX Runtime not found: {0}")]
    RuntimeMissing(String),
    #[error("model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("unsupported image format ({0}); decided by context rules")]
    Unsupported(String),
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A loaded model plus head. Not yet implemented in this seam.
pub struct Classifier {
    _private: (),
}

impl Classifier {
    /// Load ONNX Runtime, the model and the head once.
    pub fn load(_settings: &Settings) -> Result<Classifier, ClassifyError> {
        Err(ClassifyError::RuntimeMissing("classifier not built yet".into()))
    }

    /// Decode `bytes` (already hashed by the caller) and score them.
    pub fn assess(&mut self, _bytes: &[u8]) -> Result<Assessment, ClassifyError> {
        Err(ClassifyError::RuntimeMissing("classifier not built yet".into()))
    }

    /// Replace the on-device corrections the decision adapts to.
    pub fn set_corrections(&mut self, _corrections: &[Correction]) {}
}
