//! The case camera and the stash across JNI (issue 25).
//!
//! * `nativeImportCapture`: a photo or video the camera app wrote into the app's own provider
//!   (`CaptureProvider.kt`, a file in app-private storage) goes into the case through the
//!   core's one "import a file into a case" path ([`Agent::import_file`]): hashed on arrival,
//!   recorded with the camera app that wrote it and when, moved into the store (a rename:
//!   app storage and the store are on `/data`), verified like any other item.
//! * `nativeSetReturnListener`: a file the core judged in staging and put back in a camera
//!   folder is reported to the app (`ReturnListener`), whichever path found it (MediaStore,
//!   the core's watcher, reconcile, recovery), so the app can ask MediaStore to scan it:
//!   MediaProvider marks a file renamed out of a hidden folder pending until it is scanned.

use std::path::Path;
use std::sync::Arc;

use jni::objects::{GlobalRef, JClass, JObject, JString, JValue};
use jni::sys::{jlong, jstring};
use jni::{JNIEnv, JavaVM};

use super::{guard, json, jstr, lookup, opt_string, string, BridgeError, Code};
use crate::agent::{ImportRequest, Origin};

#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeImportCapture<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    path: JString<'l>,
    case_id: JString<'l>,
    camera_package: JString<'l>,
    written_at_ms: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let path = string(env, &path, "path")?;
        let case = opt_string(env, &case_id, "caseId")?;
        let package = string(env, &camera_package, "cameraPackage")?;
        let agent = lookup(handle)?;
        // The session's case, unless the app names one; its officer takes the custody.
        let session = agent.session_status()?;
        let case = case.or_else(|| session.as_ref().map(|s| s.case_id.clone())).ok_or_else(|| {
            BridgeError::new(Code::RefusedCaseIdRequired, "no case session is open and no case was given")
        })?;
        let officer = session.as_ref().and_then(|s| s.officer.clone());
        let req = ImportRequest {
            case: &case,
            officer: officer.as_deref(),
            origin: Origin::CaseCamera { package: &package, written_at_ms },
            remove_source: true,
        };
        let imported = agent.import_file(Path::new(&path), &req)?;
        jstr(env, &json(&imported)?)
    })
}

/// Installs (or, with null, removes) the app's `ReturnListener`. Process-wide.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSetReturnListener<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    listener: JObject<'l>,
) {
    guard(&mut env, (), |env| {
        if listener.is_null() {
            crate::quarantine::staging::on_return(None);
            return Ok(());
        }
        let vm = env.get_java_vm().map_err(|e| BridgeError::jni("java vm", e))?;
        let target = env.new_global_ref(&listener).map_err(|e| BridgeError::jni("global ref", e))?;
        let listener = JavaReturns { vm, target };
        crate::quarantine::staging::on_return(Some(Arc::new(move |p: &Path| listener.returned(p))));
        Ok(())
    })
}

/// The app's `ReturnListener`, called from any thread (attached for the call if it is a core
/// thread). A Java exception is cleared and logged: the file is back either way.
struct JavaReturns {
    vm: JavaVM,
    target: GlobalRef,
}

impl JavaReturns {
    fn returned(&self, path: &Path) {
        let mut env = match self.vm.attach_current_thread() {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(target: "fotovakt::android", "return listener: attach failed: {e}");
                return;
            }
        };
        let called = env.with_local_frame(4, |env| -> jni::errors::Result<()> {
            let jpath = env.new_string(path.to_string_lossy())?;
            env.call_method(self.target.as_obj(), "returned", "(Ljava/lang/String;)V", &[JValue::Object(&jpath)])?;
            Ok(())
        });
        if let Err(e) = called {
            let _ = env.exception_clear();
            tracing::warn!(target: "fotovakt::android", path = %path.display(), "return listener failed: {e}");
        }
    }
}
