//! JNI bridge for the Android app shell (cargo feature `android`).
//!
//! The Java side is `no.fotovakt.core.NativeCore` (android/app/src/main/java). This module only
//! converts JNI types, calls the same [`Agent`] methods the CLI uses, and hands back JSON
//! strings. Core errors become `no.fotovakt.core.FotovaktException` (a refusal its subclass
//! `RefusedException`) with a stable code from the error's variant ([`errors`]); so do Rust
//! panics (caught with `catch_unwind` at every entry point: unwinding into the JVM is
//! undefined behaviour), as `INTERNAL`.
//!
//! Durability is the library's: every agent operation that changes the store or the ledger
//! ends with its durability barrier, and dropping the agent (`nativeStop`) runs it once more,
//! so no entry point here flushes.
//!
//! Agents live in a registry keyed by an opaque handle (not a raw pointer): `nativeStop`
//! removes the entry while calls already in flight keep their own `Arc`, so a stop racing
//! a call can never free an agent under it.
//!
//! The core's own file watcher is started by `nativeStartWatcher`, not by `nativeStart`: the
//! shell starts it only after the first-run backlog pass, because the watcher reconciles the
//! camera folders at once and would otherwise decide the camera roll from before the install
//! as new photos.
//!
//! Every outcome of a call that decides files (`nativeOnMedia`, `nativeReconcile`,
//! `nativeRecordBacklog`) and of the core's watcher goes to the app's `OutcomeListener`
//! ([`callbacks`]), so every quarantine reaches the officer the same way, whichever path found
//! the photo.
//!
//! Videos and HEIC/HEIF/AVIF: the app installs a `no.fotovakt.core.FrameSource`
//! (`nativeSetFrameSource`); the core calls it (through [`crate::frames`]) from whichever
//! thread found the file (MediaStore pass, the core's watcher, reconcile), after hashing, so
//! every path gets the same frame-based decision. Officers' previews are decoded here from
//! the store with the classifier's own decoders (`nativePreviewJpeg`), never via a content URI.
//!
//! Logs ([`logging`]): logcat (tag `fotovakt`) on Android, stderr on a host JVM; a release
//! build logs WARN and up, with item numbers and counts but never a path, file name or case ID.
//! ONNX Runtime is the `onnxruntime-android` AAR's `libonnxruntime.so`, named by bare soname
//! so the dynamic linker finds it inside the APK.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jni::objects::{JByteArray, JClass, JObject, JString, JValue};
use jni::sys::{jboolean, jbyteArray, jint, jlong, jstring, JNI_FALSE, JNI_TRUE};
use jni::JNIEnv;

use crate::agent::browse::Listing;
use crate::agent::{Agent, Outcome};
use crate::config::Config;
use crate::media::MediaKind;
use crate::watch::{WatchGuard, WatchOptions};

mod callbacks;
mod capture;
pub mod errors;
pub mod handoff;
pub mod logging;
mod preview;
mod signer;
pub mod states;

pub use errors::{BridgeError, Code};
pub use preview::preview_jpeg;
use preview::store_file;
/// The AAR's library, found by the dynamic linker inside the APK (no path on purpose).
pub const ORT_SONAME: &str = "libonnxruntime.so";

/// A running agent plus the core's own file watcher (the second source after MediaStore),
/// once `nativeStartWatcher` started it.
struct Running {
    agent: Arc<Agent>,
    watch: Mutex<Option<WatchGuard>>,
}

fn registry() -> &'static Mutex<HashMap<i64, Arc<Running>>> {
    static AGENTS: OnceLock<Mutex<HashMap<i64, Arc<Running>>>> = OnceLock::new();
    AGENTS.get_or_init(|| Mutex::new(HashMap::new()))
}

static NEXT_HANDLE: AtomicI64 = AtomicI64::new(1);

type BridgeResult<T> = Result<T, BridgeError>;

fn running(handle: jlong) -> BridgeResult<Arc<Running>> {
    let map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.get(&handle)
        .cloned()
        .ok_or_else(|| BridgeError::new(Code::NotRunning, format!("no running agent with handle {handle}")))
}

fn lookup(handle: jlong) -> BridgeResult<Arc<Agent>> {
    running(handle).map(|r| Arc::clone(&r.agent))
}

/// Tells the app's outcome listener of each outcome, and hands them back.
fn told<T: std::borrow::Borrow<Outcome>>(outcomes: Vec<T>) -> Vec<T> {
    for o in &outcomes {
        callbacks::tell(o.borrow());
    }
    outcomes
}

/// Runs `body`, turning an `Err` or a panic into a pending `FotovaktException` with its code
/// and returning `fallback` to the JVM (which ignores it once the exception is pending).
fn guard<'l, T>(env: &mut JNIEnv<'l>, fallback: T, body: impl FnOnce(&mut JNIEnv<'l>) -> BridgeResult<T>) -> T {
    let result = catch_unwind(AssertUnwindSafe(|| body(env)));
    let error = match result {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            BridgeError::new(Code::Internal, format!("panic: {what}"))
        }
    };
    // The message may name a path or a case: a release build logs the code alone.
    if logging::RELEASE {
        tracing::error!(target: "fotovakt::android", code = error.code.as_str(), "call failed");
    } else {
        tracing::error!(target: "fotovakt::android", code = error.code.as_str(), "{}", error.message);
    }
    // If throwing fails, a JVM exception is already pending; nothing better can be done.
    if !env.exception_check().unwrap_or(true) {
        throw(env, &error);
    }
    fallback
}

/// Throw `error` as its class (`FotovaktException`, or `RefusedException` for a refusal)
/// with `(code, message)`; if that cannot be built, a plain `FotovaktException(message)` is
/// the fallback so the JVM still sees a failure.
fn throw(env: &mut JNIEnv<'_>, error: &BridgeError) {
    let built = env.with_local_frame(4, |env| -> jni::errors::Result<()> {
        let code = env.new_string(error.code.as_str())?;
        let message = env.new_string(&error.message)?;
        let exception = env.new_object(
            error.code.class(),
            "(Ljava/lang/String;Ljava/lang/String;)V",
            &[JValue::Object(&code), JValue::Object(&message)],
        )?;
        env.throw(jni::objects::JThrowable::from(exception))
    });
    if built.is_err() && !env.exception_check().unwrap_or(true) {
        let _ = env.throw_new("java/lang/RuntimeException", &error.message);
    }
}

fn string(env: &mut JNIEnv<'_>, s: &JString<'_>, what: &str) -> BridgeResult<String> {
    if s.is_null() {
        return Err(BridgeError::argument(format!("{what} is null")));
    }
    env.get_string(s).map(Into::into).map_err(|e| BridgeError::jni(what, e))
}

fn opt_string(env: &mut JNIEnv<'_>, s: &JString<'_>, what: &str) -> BridgeResult<Option<String>> {
    if s.is_null() {
        return Ok(None);
    }
    string(env, s, what).map(|v| Some(v).filter(|v| !v.is_empty()))
}

fn jstr(env: &mut JNIEnv<'_>, s: &str) -> BridgeResult<jstring> {
    env.new_string(s).map(|j| j.into_raw()).map_err(|e| BridgeError::jni("new_string", e))
}

fn json<T: serde::Serialize>(v: &T) -> BridgeResult<String> {
    serde_json::to_string(v).map_err(|e| BridgeError::new(Code::Internal, format!("json: {e}")))
}

/// Builds the config from the app's TOML and paths. The `directories` crate finds nothing on
/// Android, so the store defaults to `<filesDir>/quarantine` (app-private, never shared storage).
fn android_config(toml: &str, files_dir: &Path) -> BridgeResult<Config> {
    let origin = files_dir.join("fotovakt.toml");
    let mut config = Config::from_toml_str(toml, &origin)?;
    if config.store.is_none() {
        config.store = Some(files_dir.join("quarantine"));
    }
    if cfg!(target_os = "android") && config.classifier.ort_dylib.is_none() {
        config.classifier.ort_dylib = Some(PathBuf::from(ORT_SONAME));
    }
    Ok(config)
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeVersion<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| jstr(env, env!("CARGO_PKG_VERSION")))
}

/// Every code [`errors::Code`] can throw, one per line, for the harness's check that the Java
/// enum knows each.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeErrorCodes<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        jstr(env, &codes.join("\n"))
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeStart<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    config_toml: JString<'l>,
    files_dir: JString<'l>,
    cache_dir: JString<'l>,
    native_lib_dir: JString<'l>,
) -> jlong {
    logging::init();
    guard(&mut env, 0, |env| {
        let toml = string(env, &config_toml, "configToml")?;
        let files = PathBuf::from(string(env, &files_dir, "filesDir")?);
        let cache = opt_string(env, &cache_dir, "cacheDir")?;
        let libs = opt_string(env, &native_lib_dir, "nativeLibDir")?;
        tracing::debug!(target: "fotovakt::android", files = %files.display(), cache = ?cache, libs = ?libs, "starting agent");
        let config = android_config(&toml, &files)?;
        let agent = Arc::new(Agent::open(config)?);
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        let running = Running { agent, watch: Mutex::new(None) };
        registry().lock().unwrap_or_else(|e| e.into_inner()).insert(handle, Arc::new(running));
        tracing::info!(target: "fotovakt::android", handle, "agent started");
        Ok(handle)
    })
}

/// Starts the core's own file watcher on the camera folders (the second source after
/// MediaStore) if it is not running yet. Its outcomes go to the outcome listener. Returns
/// whether it runs; false when no camera folder is configured or it could not start (logged:
/// MediaStore stays the primary source).
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeStartWatcher<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jboolean {
    guard(&mut env, JNI_FALSE, |_env| {
        let running = running(handle)?;
        let mut watch = running.watch.lock().unwrap_or_else(|e| e.into_inner());
        if watch.is_some() {
            return Ok(JNI_TRUE);
        }
        if running.agent.cameras().is_empty() {
            return Ok(JNI_FALSE);
        }
        match WatchGuard::spawn(Arc::clone(&running.agent), WatchOptions::default(), |o| {
            tracing::debug!(target: "fotovakt::android", path = %o.path, kind = ?o.kind, "watcher");
            callbacks::tell(o);
        }) {
            Ok(w) => {
                *watch = Some(w);
                Ok(JNI_TRUE)
            }
            Err(e) => {
                tracing::warn!(target: "fotovakt::android", error = %e, "core watcher not started");
                Ok(JNI_FALSE)
            }
        }
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeOnMedia<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    path: JString<'l>,
    keyframe: JByteArray<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let path = string(env, &path, "path")?;
        let agent = lookup(handle)?;
        let outcome = if keyframe.is_null() {
            agent.on_media(Path::new(&path))
        } else {
            let frame = env.convert_byte_array(&keyframe).map_err(|e| BridgeError::jni("keyframe", e))?;
            agent.on_media_with_keyframe(Path::new(&path), &frame)
        };
        callbacks::tell(&outcome);
        jstr(env, &json(&outcome)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeClassifyKeyframe<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    jpeg: JByteArray<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        if jpeg.is_null() {
            return Err(BridgeError::argument("jpeg is null"));
        }
        let bytes = env.convert_byte_array(&jpeg).map_err(|e| BridgeError::jni("jpeg", e))?;
        let assessment = lookup(handle)?.classify_keyframe(&bytes)?;
        jstr(env, &json(&assessment)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeTag<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    target: JString<'l>,
    case_id: JString<'l>,
    officer: JString<'l>,
    note: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let target = string(env, &target, "target")?;
        let case = string(env, &case_id, "caseId")?;
        let officer = opt_string(env, &officer, "officer")?;
        let note = opt_string(env, &note, "note")?;
        let out = lookup(handle)?.tag(&target, &case, officer.as_deref(), note.as_deref())?;
        jstr(env, &json(&out)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeRelease<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    item: JString<'l>,
    reason: JString<'l>,
    officer: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let item = string(env, &item, "item")?;
        let reason = string(env, &reason, "reason")?;
        let officer = opt_string(env, &officer, "officer")?;
        let out = lookup(handle)?.release(&item, &reason, officer.as_deref())?;
        jstr(env, &json(&out)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSessionStart<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    case_id: JString<'l>,
    officer: JString<'l>,
    duration_seconds: jlong,
) {
    guard(&mut env, (), |env| {
        let case = string(env, &case_id, "caseId")?;
        let officer = opt_string(env, &officer, "officer")?;
        let duration = u64::try_from(duration_seconds).ok().filter(|s| *s > 0).map(Duration::from_secs);
        let session = lookup(handle)?.session_start(&case, officer.as_deref(), duration)?;
        tracing::info!(target: "fotovakt::android", session = session.id, until_ms = session.until_ms, "case session opened");
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSessionStop<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_env| {
        let closed = lookup(handle)?.session_stop()?;
        tracing::info!(target: "fotovakt::android", closed = closed.len(), "case session closed");
        Ok(())
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeListJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    days: jint,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let agent = lookup(handle)?;
        let since = crate::ledger::now_ms() - i64::from(days.max(0)) * 86_400_000;
        // What `fotovakt list --all` lists, narrowed to the last `days`.
        let items: Vec<_> = agent.list(None, Listing::All)?.into_iter().filter(|i| i.decided_at_ms >= since).collect();
        jstr(env, &json(&items)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeReconcile<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let agent = lookup(handle)?;
        let settle = agent.config().settle;
        let outcomes = told(agent.reconcile(settle)?);
        jstr(env, &json(&outcomes)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeStatsJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let stats = lookup(handle)?.stats_json()?;
        jstr(env, &stats)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeExport<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    case_id: JString<'l>,
    out_path: JString<'l>,
    officer: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let case_id = string(env, &case_id, "caseId")?;
        let out_path = string(env, &out_path, "outPath")?;
        let officer = opt_string(env, &officer, "officer")?;
        let report = lookup(handle)?.export(&case_id, Path::new(&out_path), officer.as_deref())?;
        jstr(env, &json(&report)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeAck<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    case_id: JString<'l>,
    officer: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let case_id = string(env, &case_id, "caseId")?;
        let officer = opt_string(env, &officer, "officer")?;
        let report = lookup(handle)?.ack(&case_id, officer.as_deref())?;
        jstr(env, &json(&report)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativePurge<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    dry_run: jboolean,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let report = lookup(handle)?.purge(dry_run != JNI_FALSE, None)?;
        jstr(env, &json(&report)?)
    })
}

/// Parses and validates a config as `nativeStart` would, without opening anything: the
/// effective config as JSON (what the core will do), or a `FotovaktException` naming the bad
/// value. The app shows the error as a keyed app state; the host harness checks both.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeCheckConfig<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    config_toml: JString<'l>,
    files_dir: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let toml = string(env, &config_toml, "configToml")?;
        let files = PathBuf::from(string(env, &files_dir, "filesDir")?);
        let config = android_config(&toml, &files)?;
        jstr(env, &json(&config)?)
    })
}

/// What the admin's health states need from the core: is the model loaded (and if not,
/// why), the settings that change what the agent may do, the last intake, and the store's
/// health (failing since when and why, full, read-only; free space; files waiting for it).
#[derive(serde::Serialize)]
struct Health {
    version: &'static str,
    model_loaded: bool,
    model_error: Option<String>,
    model_path: Option<PathBuf>,
    media_location_access: bool,
    backlog: crate::config::Backlog,
    cameras: Vec<PathBuf>,
    last_decided_ms: Option<i64>,
    /// The key packages and checkpoints are signed with (`null` with `device_key_error`).
    device_key: Option<crate::stats::DeviceKeyStats>,
    device_key_error: Option<String>,
    /// The newest signed checkpoint, for the EMM to keep.
    checkpoint: Option<crate::signing::Checkpoint>,
    /// The core's own watcher runs (started by the shell once the backlog pass is done).
    watching: bool,
    store: crate::health::Health,
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeHealthJson<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let running = running(handle)?;
        let agent = &running.agent;
        let last_decided_ms = agent
            .ledger()
            .last_decided_ms()
            .map_err(|e| BridgeError::new(Code::Ledger, format!("last intake: {e}")))?;
        let config = agent.config();
        let health = Health {
            version: env!("CARGO_PKG_VERSION"),
            model_loaded: agent.model_status().is_ok(),
            model_error: agent.model_status().err().map(str::to_string),
            model_path: config.classifier.model.clone(),
            media_location_access: config.media_location_access,
            backlog: config.backlog,
            cameras: agent.cameras().to_vec(),
            last_decided_ms,
            device_key: agent.device_key_stats(),
            device_key_error: agent.signer().err().map(|e| e.to_string()),
            checkpoint: agent.newest_checkpoint(),
            watching: running.watch.lock().unwrap_or_else(|e| e.into_inner()).is_some(),
            store: agent.health(),
        };
        jstr(env, &json(&health)?)
    })
}

/// The first-run backlog pass (`backlog` in the config): Outcome JSON array.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeRecordBacklog<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let outcomes = told(lookup(handle)?.record_backlog()?);
        jstr(env, &json(&outcomes)?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeItemFile<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    item: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let item = string(env, &item, "item")?;
        let path = store_file(&*lookup(handle)?, &item)?;
        jstr(env, &path.to_string_lossy())
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativePreviewJpeg<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    item: JString<'l>,
    max_side: jint,
) -> jbyteArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let item = string(env, &item, "item")?;
        let jpeg = preview_jpeg(&*lookup(handle)?, &item, u32::try_from(max_side).unwrap_or(0))?;
        env.byte_array_from_slice(&jpeg).map(|a| a.into_raw()).map_err(|e| BridgeError::jni("byte array", e))
    })
}

/// Installs (`source` non-null) or removes the app's frame source for videos and
/// HEIC/HEIF/AVIF. Process-wide, like the app's single agent.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSetFrameSource<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    source: JObject<'l>,
) {
    guard(&mut env, (), |env| {
        if source.is_null() {
            crate::frames::install(None);
            return Ok(());
        }
        let vm = env.get_java_vm().map_err(|e| BridgeError::jni("java vm", e))?;
        let target = env.new_global_ref(&source).map_err(|e| BridgeError::jni("global ref", e))?;
        let callback = callbacks::JavaFrames { vm, target };
        crate::frames::install(Some(Arc::new(move |path: &Path, kind: MediaKind| callback.frame(path, kind))));
        Ok(())
    })
}

/// Installs (`listener` non-null) or removes the app's `OutcomeListener`. Process-wide.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSetOutcomeListener<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    listener: JObject<'l>,
) {
    guard(&mut env, (), |env| {
        if listener.is_null() {
            callbacks::set_listener(None);
            return Ok(());
        }
        let vm = env.get_java_vm().map_err(|e| BridgeError::jni("java vm", e))?;
        let target = env.new_global_ref(&listener).map_err(|e| BridgeError::jni("global ref", e))?;
        callbacks::set_listener(Some(callbacks::JavaOutcomes { vm, target }));
        Ok(())
    })
}

/// Exports a case into the hand-off folder, encrypted to `recipients` (one `age1…` per line;
/// none: a plain package), replacing its older package there cleanly ([`handoff::export`]).
/// ExportReport JSON.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeExportHandoff<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    case_id: JString<'l>,
    dir: JString<'l>,
    officer: JString<'l>,
    recipients: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let case_id = string(env, &case_id, "caseId")?;
        let dir = PathBuf::from(string(env, &dir, "dir")?);
        let officer = opt_string(env, &officer, "officer")?;
        let recipients = opt_string(env, &recipients, "recipients")?.unwrap_or_default();
        let recipients = crate::export::Recipients::parse(recipients.lines())
            .map_err(|e| BridgeError::argument(format!("recipients: {e}")))?;
        let report = handoff::export(&*lookup(handle)?, &case_id, &dir, officer.as_deref(), &recipients)?;
        jstr(env, &json(&report)?)
    })
}

/// Removes from the hand-off folder every package that is no longer needed at `nowMs`
/// ([`handoff::sweep`]). SweepReport JSON.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSweepHandoff<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    dir: JString<'l>,
    now_ms: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let dir = PathBuf::from(string(env, &dir, "dir")?);
        let report = handoff::sweep(&*lookup(handle)?, &dir, now_ms)?;
        jstr(env, &json(&report)?)
    })
}

/// The statistics as a few keyed app states ([`states::stats_states`]): JSON array of
/// `{key, message, data}`.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeStatsStates<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let stats = lookup(handle)?.stats(false)?;
        let value = serde_json::to_value(&stats).map_err(|e| BridgeError::new(Code::Internal, format!("json: {e}")))?;
        jstr(env, &json(&states::stats_states(&value))?)
    })
}

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeStop<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
) {
    guard(&mut env, (), |_env| {
        let removed = registry().lock().unwrap_or_else(|e| e.into_inner()).remove(&handle);
        // Dropping the last Arc stops the watcher (WatchGuard) and closes the ledger; calls
        // still in flight hold their own Arc and finish first.
        drop(removed);
        Ok(())
    })
}
