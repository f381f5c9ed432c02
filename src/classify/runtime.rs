//! Finding and starting ONNX Runtime (the `ort` crate with `load-dynamic`).
//!
//! Nothing is downloaded: the shared library is searched, in this order, at
//! `Settings.ort_dylib`, `$ORT_DYLIB_PATH`, beside the executable, and in the PyPI
//! `onnxruntime` package (`onnxruntime/capi/libonnxruntime.so.*`) of the Python
//! installations found by reading directories (a virtualenv, the prefixes of `PATH`,
//! pyenv, `~/.local`, `/usr/local`, `/usr`). The agent never runs an interpreter to ask:
//! an evidence agent starts no program it found on `PATH`. The process-wide `ort`
//! environment is built once and kept for the life of the process (`ort` allows only one
//! per process).
//!
//! ONNX Runtime's telemetry is always off. Official builds since 1.31 carry a 1DS client on
//! Linux, macOS and Android that writes a device ID and an event cache under
//! `$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime` and, some seconds after start,
//! uploads a process-information event (device ID, executable path, OS, CPU) to
//! `mobile.events.data.microsoft.com`. `with_telemetry(false)` only quiets the per-session
//! events; the runtime's full opt-out is the environment variable [`TELEMETRY_OFF`], read
//! when it initialises, which fotovakt sets before it loads the library. There is no
//! setting to turn it on.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use super::ClassifyError;

/// How to get ONNX Runtime, appended to every "not found" message.
pub const HOW_TO_GET: &str = "install it with `python3 -m pip install onnxruntime==1.31.1` \
     or set ORT_DYLIB_PATH to libonnxruntime.so; until then photos are decided by context and manual rules only";

/// [`HOW_TO_GET`] without what the agent does meanwhile: for `classify`, which only scores.
pub const INSTALL_HINT: &str =
    "install it with `python3 -m pip install onnxruntime==1.31.1` or set ORT_DYLIB_PATH to libonnxruntime.so";

#[cfg(target_os = "macos")]
const LIB_PREFIX: &str = "libonnxruntime";
#[cfg(not(target_os = "macos"))]
const LIB_PREFIX: &str = "libonnxruntime.so";

/// ONNX Runtime's full telemetry opt-out (name, value): with it set before the runtime
/// initialises there is no uploader, no device ID and no offline event cache.
pub const TELEMETRY_OFF: (&str, &str) = ("ORT_DISABLE_TELEMETRY", "1");

/// Put [`TELEMETRY_OFF`] into this process's environment, whatever it held before. The
/// binary calls this first thing in `main`, while it is the only thread; loading the
/// runtime calls it again for library users (the JNI bridge, tests), where it is a no-op
/// unless someone changed it. There other threads may exist, and glibc's `setenv` is not
/// safe against a concurrent `getenv`: a host embedding the library should set the
/// variable itself before it starts threads (the Android shell's process is the one case,
/// and it loads the runtime once, early).
pub fn disable_telemetry() {
    let (name, value) = TELEMETRY_OFF;
    if std::env::var_os(name).as_deref() != Some(OsStr::new(value)) {
        std::env::set_var(name, value);
    }
}

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
    for capi in python_capi_dirs() {
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

/// Where the PyPI `onnxruntime` package keeps its shared library, in every Python
/// installation that has it, found by reading directories only.
fn python_capi_dirs() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let path: Vec<PathBuf> = env("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    capi_dirs(&python_prefixes(env("VIRTUAL_ENV"), &path, env("PYENV_ROOT"), env("HOME")))
}

/// `onnxruntime/capi` in the site-packages of each prefix, in prefix order.
fn capi_dirs(prefixes: &[PathBuf]) -> Vec<PathBuf> {
    prefixes
        .iter()
        .flat_map(|prefix| site_packages(prefix))
        .map(|sp| sp.join("onnxruntime").join("capi"))
        .filter(|capi| capi.is_dir())
        .collect()
}

/// Installation prefixes that may hold a Python, most specific first: the active
/// virtualenv, the parent of every `PATH` entry with a `python3` in it, pyenv's versions
/// (its `shims` on `PATH`, or `$PYENV_ROOT`), pip's `--user` prefix, then the system ones.
fn python_prefixes(
    venv: Option<PathBuf>,
    path: &[PathBuf],
    pyenv: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = venv.into_iter().collect();
    let mut pyenv_roots: Vec<PathBuf> = pyenv.into_iter().collect();
    for dir in path {
        if dir.file_name() == Some(OsStr::new("shims")) {
            pyenv_roots.extend(dir.parent().map(Path::to_path_buf));
        } else if dir.join("python3").is_file() {
            out.extend(dir.parent().map(Path::to_path_buf));
        }
    }
    for root in pyenv_roots {
        out.extend(sorted_dirs(&root.join("versions"), |_| true));
    }
    out.extend(home.map(|h| h.join(".local")));
    out.extend(["/usr/local", "/usr"].map(PathBuf::from));
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// `PREFIX/lib*/python3*/{site,dist}-packages` directories that exist.
fn site_packages(prefix: &Path) -> Vec<PathBuf> {
    ["lib", "lib64"]
        .iter()
        .flat_map(|lib| sorted_dirs(&prefix.join(lib), |n| n.starts_with("python3")))
        .flat_map(|py| ["site-packages", "dist-packages"].map(|sp| py.join(sp)))
        .filter(|sp| sp.is_dir())
        .collect()
}

/// Subdirectories of `dir` whose names pass `keep`, newest name last.
fn sorted_dirs(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
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
    disable_telemetry();
    for path in tried.iter().filter(|p| p.is_file() || bare(p)) {
        match ort::init_from(path) {
            Ok(builder) => {
                return builder
                    .with_name("fotovakt")
                    .with_telemetry(false)
                    .build()
                    .map(|env| {
                        tracing::info!(path = %path.display(), telemetry = "off", "ONNX Runtime loaded");
                        (env, path.clone())
                    })
                    .map_err(|e| format!("{}: {e}", path.display()));
            }
            Err(e) => reasons.push(format!("{}: {e}", path.display())),
        }
    }
    let looked = if tried.is_empty() {
        "no ORT_DYLIB_PATH, nothing beside the executable, no onnxruntime in any Python found".to_string()
    } else if reasons.is_empty() {
        format!("none of {} exists", tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))
    } else {
        reasons.join("; ")
    };
    Err(format!("{looked}; {HOW_TO_GET}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_installs_are_found_by_reading_directories_in_order() {
        let t = tempfile::tempdir().expect("tempdir");
        let root = t.path();
        let mk = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(&p).expect("mkdir");
            p
        };
        let venv_capi = mk("venv/lib/python3.12/site-packages/onnxruntime/capi");
        let local_capi = mk("usr-local/lib/python3.11/dist-packages/onnxruntime/capi");
        mk("usr-local/bin");
        std::fs::write(root.join("usr-local/bin/python3"), b"").expect("python3");
        mk("no-python/bin");
        mk("no-python/lib/python3.11/site-packages/onnxruntime/capi");
        let shims = mk("pyenv/shims");
        let pyenv_old = mk("pyenv/versions/3.10.1/lib/python3.10/site-packages/onnxruntime/capi");
        let pyenv_new = mk("pyenv/versions/3.11.7/lib/python3.11/site-packages/onnxruntime/capi");
        mk("pyenv/versions/3.12.0/lib/python3.12/site-packages"); // a Python without onnxruntime
        let user_capi = mk("home/.local/lib64/python3.11/site-packages/onnxruntime/capi");
        mk("home/.local/lib/perl5/site-packages/onnxruntime/capi"); // not a Python
        let path = [root.join("no-python/bin"), shims, root.join("usr-local/bin")];
        let prefixes = python_prefixes(Some(root.join("venv")), &path, None, Some(root.join("home")));
        let found: Vec<PathBuf> = capi_dirs(&prefixes).into_iter().filter(|p| p.starts_with(root)).collect();
        assert_eq!(found, vec![venv_capi, local_capi, pyenv_old, pyenv_new, user_capi]);
        // Nothing is listed twice when a prefix comes from two places.
        let twice = python_prefixes(Some(root.join("usr-local")), &path, Some(root.join("pyenv")), None);
        let unique: std::collections::HashSet<&PathBuf> = twice.iter().collect();
        assert_eq!(unique.len(), twice.len(), "{twice:?}");
        assert_eq!(twice.iter().filter(|p| p.ends_with("usr-local")).count(), 1);
    }
}
