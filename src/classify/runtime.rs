//! Finding and starting ONNX Runtime (the `ort` crate with `load-dynamic`).
//!
//! Nothing is downloaded: the shared library is searched, in this order, at
//! `Settings.ort_dylib`, `$ORT_DYLIB_PATH`, beside the executable, and in the PyPI
//! `onnxruntime` package (`onnxruntime/capi/libonnxruntime.so.*`) of whichever Python is
//! on `PATH`. The process-wide `ort` environment is built once and kept for the life of
//! the process (`ort` allows only one per process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use super::ClassifyError;

/// How to get ONNX Runtime, appended to every "not found" message.
pub const HOW_TO_GET: &str = "install it with `python3 -m pip install onnxruntime==1.31.1` \
     or set ORT_DYLIB_PATH to libonnxruntime.so; until then photos are decided by context and manual rules only";

#[cfg(target_os = "macos")]
const LIB_PREFIX: &str = "libonnxruntime";
#[cfg(not(target_os = "macos"))]
const LIB_PREFIX: &str = "libonnxruntime.so";

/// The environment once it was built, or why it could not be.
static ENV: OnceLock<Result<(Environment, PathBuf), String>> = OnceLock::new();
/// Serialises the first initialisation (ort's dylib loader is global too).
static INIT: Mutex<()> = Mutex::new(());

/// Candidate library paths, most specific first.
pub fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        if !p.is_empty() {
            out.push(PathBuf::from(p));
        }
    }
    if let Some(dir) = std::env::current_exe().ok().as_deref().and_then(Path::parent) {
        out.extend(libs_in(dir));
        // cargo puts test and bench executables in target/*/deps
        if dir.ends_with("deps") {
            if let Some(parent) = dir.parent() {
                out.extend(libs_in(parent));
            }
        }
    }
    if let Some(capi) = python_capi_dir() {
        out.extend(libs_in(&capi));
    }
    out
}

/// `libonnxruntime.so*` files in `dir`, the plain name first, then versioned ones.
fn libs_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(LIB_PREFIX) && !n.ends_with(".dbg"))
        })
        .collect();
    found.sort_by_key(|p| p.as_os_str().len());
    found
}

/// Where Python's `onnxruntime` package keeps its shared library, if Python has it.
fn python_capi_dir() -> Option<PathBuf> {
    const SCRIPT: &str = "import importlib.util as u, os; s = u.find_spec('onnxruntime'); \
                          print(os.path.join(os.path.dirname(s.origin), 'capi') if s and s.origin else '')";
    for python in ["python3", "python"] {
        let Ok(out) = Command::new(python).args(["-c", SCRIPT]).output() else {
            continue;
        };
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !dir.is_empty() {
            return Some(PathBuf::from(dir));
        }
    }
    None
}

/// Load ONNX Runtime once per process; later calls return the same outcome.
pub fn environment(explicit: Option<&Path>) -> Result<(&'static Environment, &'static Path), ClassifyError> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = ENV.get_or_init(|| init(explicit));
    match outcome {
        Ok((env, path)) => Ok((env, path.as_path())),
        Err(msg) => Err(ClassifyError::RuntimeMissing(msg.clone())),
    }
}

fn init(explicit: Option<&Path>) -> Result<(Environment, PathBuf), String> {
    try_candidates(&candidates(explicit))
}

/// Build the environment from the first of `tried` that loads; else the one-line reason
/// (with how to get ONNX Runtime). Only the first successful call in a process can succeed.
pub fn try_candidates(tried: &[PathBuf]) -> Result<(Environment, PathBuf), String> {
    let mut reasons = Vec::new();
    // A bare soname ("libonnxruntime.so", no slash) is handed to dlopen as is, which searches
    // the library path: on Android that finds the AAR's library inside the APK.
    let bare = |p: &Path| p.components().count() == 1 && !p.as_os_str().is_empty();
    for path in tried.iter().filter(|p| p.is_file() || bare(p)) {
        match ort::init_from(path) {
            Ok(builder) => {
                return builder
                    .with_name("fotovakt")
                    .with_telemetry(false)
                    .build()
                    .map(|env| {
                        tracing::info!(path = %path.display(), "ONNX Runtime loaded");
                        (env, path.clone())
                    })
                    .map_err(|e| format!("{}: {e}", path.display()));
            }
            Err(e) => reasons.push(format!("{}: {e}", path.display())),
        }
    }
    let looked = if tried.is_empty() {
        "no ORT_DYLIB_PATH, nothing beside the executable, no Python onnxruntime".to_string()
    } else if reasons.is_empty() {
        format!("none of {} exists", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
    } else {
        reasons.join("; ")
    };
    Err(format!("{looked}; {HOW_TO_GET}"))
}
