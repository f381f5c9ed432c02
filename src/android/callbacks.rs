//! Calls from the core into the app, from whichever thread the core is on (attached to the
//! JVM for the call when it is a core thread):
//!
//! * [`JavaFrames`]: the app's `FrameSource`, for a frame of a video or a HEIC/HEIF/AVIF photo.
//! * [`JavaOutcomes`]: the app's `OutcomeListener`, told of every outcome of the core's own
//!   watcher, so a photo that the watcher quarantined reaches the officer exactly as one the
//!   MediaStore pass, the content job, reconcile or the backlog pass quarantined (the shell
//!   tells each item once, whichever path reports it first).
//!
//! Both are process-wide, like the app's single agent. A Java exception in a callback is
//! cleared and logged; it never reaches the core's thread.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use jni::objects::{GlobalRef, JByteArray, JValue};
use jni::JavaVM;

use crate::agent::{Outcome, OutcomeKind};
use crate::media::MediaKind;

/// The app's `FrameSource`. A Java exception or a null return means "no frame": the core
/// decides by context.
pub(super) struct JavaFrames {
    pub vm: JavaVM,
    pub target: GlobalRef,
}

impl JavaFrames {
    pub fn frame(&self, path: &Path, kind: MediaKind) -> Option<Vec<u8>> {
        let mut env = match self.vm.attach_current_thread() {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(target: "fotovakt::android", error = %e, "frame source: attach failed");
                return None;
            }
        };
        let result = env.with_local_frame(8, |env| -> jni::errors::Result<Option<Vec<u8>>> {
            let jpath = env.new_string(path.to_string_lossy())?;
            let jkind = env.new_string(kind.as_str())?;
            let out = env.call_method(
                self.target.as_obj(),
                "frame",
                "(Ljava/lang/String;Ljava/lang/String;)[B",
                &[JValue::Object(&jpath), JValue::Object(&jkind)],
            );
            let obj = match out {
                Ok(v) => v.l()?,
                Err(jni::errors::Error::JavaException) => {
                    env.exception_clear()?;
                    tracing::warn!(target: "fotovakt::android", "frame source threw");
                    tracing::debug!(target: "fotovakt::android", path = %path.display(), "file of the frame");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if obj.is_null() {
                return Ok(None);
            }
            Ok(Some(env.convert_byte_array(JByteArray::from(obj))?))
        });
        match result {
            Ok(frame) => frame,
            Err(e) => {
                let _ = env.exception_clear();
                tracing::warn!(target: "fotovakt::android", error = %e, "frame source failed");
                tracing::debug!(target: "fotovakt::android", path = %path.display(), "file of the frame");
                None
            }
        }
    }
}

/// The app's `OutcomeListener`: `outcome(String json)` with the outcome as `onMedia` returns it.
pub(super) struct JavaOutcomes {
    pub vm: JavaVM,
    pub target: GlobalRef,
}

fn listener() -> &'static Mutex<Option<Arc<JavaOutcomes>>> {
    static LISTENER: OnceLock<Mutex<Option<Arc<JavaOutcomes>>>> = OnceLock::new();
    LISTENER.get_or_init(|| Mutex::new(None))
}

/// Installs (or, with `None`, removes) the process's outcome listener.
pub(super) fn set_listener(l: Option<JavaOutcomes>) {
    *listener().lock().unwrap_or_else(|e| e.into_inner()) = l.map(Arc::new);
}

/// Tells the listener, if there is one, of `outcome` (skips are not told: nothing happened).
pub(super) fn tell(outcome: &Outcome) {
    if outcome.kind == OutcomeKind::Skipped {
        return;
    }
    let Some(l) = listener().lock().unwrap_or_else(|e| e.into_inner()).clone() else { return };
    let json = match serde_json::to_string(outcome) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(target: "fotovakt::android", error = %e, "outcome listener: not serialisable");
            return;
        }
    };
    l.outcome(&json);
}

impl JavaOutcomes {
    fn outcome(&self, json: &str) {
        let mut env = match self.vm.attach_current_thread() {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(target: "fotovakt::android", error = %e, "outcome listener: attach failed");
                return;
            }
        };
        let result = env.with_local_frame(4, |env| -> jni::errors::Result<()> {
            let jjson = env.new_string(json)?;
            match env.call_method(self.target.as_obj(), "outcome", "(Ljava/lang/String;)V", &[JValue::Object(&jjson)]) {
                Ok(_) => Ok(()),
                Err(jni::errors::Error::JavaException) => {
                    env.exception_clear()?;
                    tracing::warn!(target: "fotovakt::android", "outcome listener threw");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        });
        if let Err(e) = result {
            let _ = env.exception_clear();
            tracing::warn!(target: "fotovakt::android", error = %e, "outcome listener failed");
        }
    }
}
