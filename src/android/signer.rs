//! The Android device key through the bridge: the shell's `no.fotovakt.core.DeviceSigner`
//! (an EC P-256 key in the Keystore, StrongBox where there is one) installed as the core's
//! [`Signer`]. The key never leaves the Keystore: the core hands the shell the bytes to sign
//! and gets a DER ECDSA signature back, from whichever thread signs (a barrier's checkpoint on
//! the watcher's thread, an export on the caller's).
//!
//! Also here: the hand-off's export to age recipients, automatic time (`AUTO_TIME`) from the
//! shell, and the officer's re-anchoring of a ledger whose head was lost.

use std::path::Path;
use std::sync::Arc;

use jni::objects::{GlobalRef, JByteArray, JClass, JObject, JObjectArray, JString, JValue};
use jni::sys::{jint, jlong, jstring};
use jni::{JNIEnv, JavaVM};

use super::{guard, json, jstr, lookup, opt_string, string, BridgeError, BridgeResult, Code};
use crate::signing::{self, Algorithm, Provider, PublicKey, SignError, Signer};

/// The shell's signer, called through JNI.
struct JavaSigner {
    vm: JavaVM,
    target: GlobalRef,
    public: PublicKey,
    provider: Provider,
    attestation: Vec<Vec<u8>>,
}

impl Signer for JavaSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut env = self.vm.attach_current_thread().map_err(|e| SignError::Failed(format!("attach: {e}")))?;
        let result = env.with_local_frame(8, |env| -> jni::errors::Result<Result<Vec<u8>, String>> {
            let bytes = env.byte_array_from_slice(message)?;
            let out = env.call_method(self.target.as_obj(), "sign", "([B)[B", &[JValue::Object(&bytes)]);
            let obj = match out {
                Ok(v) => v.l()?,
                Err(jni::errors::Error::JavaException) => {
                    let _ = env.exception_describe();
                    env.exception_clear()?;
                    return Ok(Err("the Keystore threw".into()));
                }
                Err(e) => return Err(e),
            };
            if obj.is_null() {
                return Ok(Err("the Keystore answered null".into()));
            }
            Ok(Ok(env.convert_byte_array(JByteArray::from(obj))?))
        });
        match result {
            Ok(r) => r.map_err(SignError::Failed),
            Err(e) => {
                let _ = env.exception_clear();
                Err(SignError::Failed(format!("JNI: {e}")))
            }
        }
    }

    fn provider(&self) -> Provider {
        self.provider
    }

    fn attestation(&self) -> &[Vec<u8>] {
        &self.attestation
    }
}

fn call_string(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> BridgeResult<String> {
    let v = env.call_method(obj, name, "()Ljava/lang/String;", &[]).and_then(|v| v.l());
    let v = v.map_err(|e| BridgeError::jni(name, e))?;
    string(env, &JString::from(v), name)
}

fn call_bytes(env: &mut JNIEnv<'_>, obj: &JObject<'_>, name: &str) -> BridgeResult<Vec<u8>> {
    let v = env.call_method(obj, name, "()[B", &[]).and_then(|v| v.l()).map_err(|e| BridgeError::jni(name, e))?;
    if v.is_null() {
        return Err(BridgeError::argument(format!("DeviceSigner.{name}() is null")));
    }
    env.convert_byte_array(JByteArray::from(v)).map_err(|e| BridgeError::jni(name, e))
}

fn attestation_chain(env: &mut JNIEnv<'_>, obj: &JObject<'_>) -> BridgeResult<Vec<Vec<u8>>> {
    let what = "attestationChain";
    let v = env.call_method(obj, what, "()[[B", &[]).and_then(|v| v.l()).map_err(|e| BridgeError::jni(what, e))?;
    if v.is_null() {
        return Ok(Vec::new());
    }
    let array = JObjectArray::from(v);
    let n = env.get_array_length(&array).map_err(|e| BridgeError::jni(what, e))?;
    let mut out = Vec::new();
    for i in 0..n {
        let cert = env.get_object_array_element(&array, i).map_err(|e| BridgeError::jni(what, e))?;
        out.push(env.convert_byte_array(JByteArray::from(cert)).map_err(|e| BridgeError::jni(what, e))?);
    }
    Ok(out)
}

/// Install the shell's device signer (null removes it): read its key once, and make one
/// signature to prove the key signs and the public key is its own. Returns the fingerprint.
/// A signer that fails here is not installed (the core keeps its key file): the caller reports it.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSetDeviceSigner<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    signer: JObject<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        if signer.is_null() {
            signing::install(None);
            return jstr(env, "");
        }
        let algorithm = call_string(env, &signer, "algorithm")?;
        let algorithm = Algorithm::parse(&algorithm).ok_or_else(|| {
            BridgeError::argument(format!("DeviceSigner.algorithm() {algorithm:?} is not one the core knows"))
        })?;
        let provider = call_string(env, &signer, "provider")?;
        let provider = Provider::parse(&provider).ok_or_else(|| {
            BridgeError::argument(format!("DeviceSigner.provider() {provider:?} is not one the core knows"))
        })?;
        let spki = call_bytes(env, &signer, "publicKey")?;
        let public = PublicKey::from_spki(algorithm, &spki).map_err(|e| BridgeError::argument(e.to_string()))?;
        let attestation = attestation_chain(env, &signer)?;
        let vm = env.get_java_vm().map_err(|e| BridgeError::jni("java vm", e))?;
        let target = env.new_global_ref(&signer).map_err(|e| BridgeError::jni("global ref", e))?;
        let candidate = JavaSigner { vm, target, public, provider, attestation };
        signing::Signed::make(&candidate, b"fotovakt-device-signer-probe\n")
            .map_err(|e| BridgeError::new(Code::Io, format!("the device signer does not sign with its key: {e}")))?;
        let fingerprint = candidate.public.fingerprint();
        tracing::info!(target: "fotovakt::android", %fingerprint, provider = provider.as_str(), certificates = candidate.attestation.len(), "device signer installed");
        signing::install(Some(Arc::new(candidate)));
        jstr(env, &fingerprint)
    })
}

/// Export a case encrypted to `recipients` (one `age1…` per line; none: a plain package).
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeExportTo<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    case_id: JString<'l>,
    out_path: JString<'l>,
    officer: JString<'l>,
    recipients: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let case_id = string(env, &case_id, "caseId")?;
        let out_path = string(env, &out_path, "outPath")?;
        let officer = opt_string(env, &officer, "officer")?;
        let recipients = opt_string(env, &recipients, "recipients")?.unwrap_or_default();
        let recipients = crate::export::Recipients::parse(recipients.lines())
            .map_err(|e| BridgeError::argument(format!("recipients: {e}")))?;
        let report = lookup(handle)?.export_to(&case_id, Path::new(&out_path), officer.as_deref(), &recipients)?;
        jstr(env, &json(&report)?)
    })
}

/// Whether automatic (network) time is on: 1 on, 0 off, anything else unknown. Process-wide;
/// every event recorded afterwards carries it in its boot-clock stamp.
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeSetAutoTime<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    state: jint,
) {
    guard(&mut env, (), |_env| {
        crate::ledger::clock::set_auto_time(match state {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        });
        Ok(())
    })
}

/// Anchor the ledger again after its head was found missing or unreadable (audited).
#[no_mangle]
pub extern "system" fn Java_no_fotovakt_core_NativeCore_nativeAnchor<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    handle: jlong,
    reason: JString<'l>,
    officer: JString<'l>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let reason = string(env, &reason, "reason")?;
        let officer = opt_string(env, &officer, "officer")?;
        let report = lookup(handle)?.anchor(&reason, officer.as_deref())?;
        jstr(env, &json(&report)?)
    })
}
