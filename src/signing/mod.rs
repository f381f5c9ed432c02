//! The device key: who signed a case package or a ledger checkpoint, and the check of it.
//!
//! Every store has one signing key. On a host it is an Ed25519 key in a key file beside the
//! ledger ([`keyfile`]: `STORE/device.key`, PKCS#8 PEM, 0600, never put in a package). On
//! Android it is an EC P-256 key in the Keystore (TEE or StrongBox, not exportable): the shell
//! installs a [`Signer`] that the core hands the bytes to sign ([`install`], through the JNI
//! bridge), and the key file is the fallback when the Keystore cannot give one.
//!
//! A key is named by its **fingerprint**: the SHA-256 of its X.509 `SubjectPublicKeyInfo`
//! (DER), in lowercase hex, the same rule for both algorithms. An admin computes it with
//! `openssl pkey -pubin -inform DER -outform DER < key.der | sha256sum`, registers it per phone
//! (`stats` shows it; the phone reports it as a keyed app state), and a receiver passes it to
//! `verify-package --trust`.
//!
//! What is signed is always a short text with its own first line ([`package_message`],
//! [`checkpoint::message`]), so a signature over one kind of thing can never pass for another.
//! [`Signed`] is a signature as it travels: algorithm, public key, fingerprint, signature and,
//! for a Keystore key, its attestation chain.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod checkpoint;
pub mod keyfile;

pub use checkpoint::Checkpoint;
pub use keyfile::KeyFile;

/// Standard base64 (with padding), for keys, signatures and certificates in JSON.
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))
}

/// How a device key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032), the host key file.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256, the signature DER-encoded: the Android Keystore's
    /// `SHA256withECDSA`.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
}

impl Algorithm {
    /// The name used in JSON and by the Android shell.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    /// The algorithm named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Algorithm> {
        [Algorithm::Ed25519, Algorithm::EcdsaP256Sha256].into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of keys and signing.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A public key that is not a `SubjectPublicKeyInfo` of its algorithm.
    #[error("not an {algorithm} public key: {reason}")]
    BadPublicKey { algorithm: Algorithm, reason: String },
    /// The signer (the key file, or the Keystore through the shell) did not sign.
    #[error("the device key could not sign: {0}")]
    Failed(String),
    /// Reading or writing the key file failed.
    #[error("device key {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a PKCS#8 Ed25519 key.
    #[error("device key {path}: {reason}")]
    BadKeyFile { path: std::path::PathBuf, reason: String },
    /// The key file can be read by others.
    #[error("device key {path}: mode {mode:o} lets others read it; run `chmod 600 {path}`")]
    Permissions { path: std::path::PathBuf, mode: u32 },
}

/// A public key: its algorithm and its `SubjectPublicKeyInfo` DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: Algorithm,
    spki: Vec<u8>,
}

impl PublicKey {
    /// A public key from its `SubjectPublicKeyInfo` DER, checked to be one of `algorithm`.
    pub fn from_spki(algorithm: Algorithm, spki: &[u8]) -> Result<PublicKey, SignError> {
        let bad = |reason: String| SignError::BadPublicKey { algorithm, reason };
        match algorithm {
            Algorithm::Ed25519 => {
                use ed25519_dalek::pkcs8::DecodePublicKey;
                ed25519_dalek::VerifyingKey::from_public_key_der(spki).map_err(|e| bad(e.to_string()))?;
            }
            Algorithm::EcdsaP256Sha256 => {
                use p256::pkcs8::DecodePublicKey;
                p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(PublicKey { algorithm, spki: spki.to_vec() })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The `SubjectPublicKeyInfo` DER.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// SHA-256 of the `SubjectPublicKeyInfo` DER, lowercase hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.spki))
    }

    /// Does `signature` sign `message` with this key? Ed25519 is checked strictly (no
    /// malleable or small-order forms); ECDSA takes the DER signature the Keystore makes.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.algorithm {
            Algorithm::Ed25519 => {
                use ed25519_dalek::pkcs8::DecodePublicKey;
                let (Ok(key), Ok(sig)) = (
                    ed25519_dalek::VerifyingKey::from_public_key_der(&self.spki),
                    ed25519_dalek::Signature::from_slice(signature),
                ) else {
                    return false;
                };
                key.verify_strict(message, &sig).is_ok()
            }
            Algorithm::EcdsaP256Sha256 => {
                use p256::ecdsa::signature::Verifier;
                use p256::pkcs8::DecodePublicKey;
                let (Ok(key), Ok(sig)) = (
                    p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki),
                    p256::ecdsa::Signature::from_der(signature),
                ) else {
                    return false;
                };
                key.verify(message, &sig).is_ok()
            }
        }
    }
}

/// Where a device key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// The host key file (`STORE/device.key`).
    KeyFile,
    /// The Android Keystore, in the TEE.
    AndroidKeystore,
    /// The Android Keystore, in StrongBox (a separate secure chip).
    AndroidStrongbox,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::KeyFile => "key_file",
            Provider::AndroidKeystore => "android_keystore",
            Provider::AndroidStrongbox => "android_strongbox",
        }
    }

    /// The provider named `s`, if it is one.
    pub fn parse(s: &str) -> Option<Provider> {
        [Provider::KeyFile, Provider::AndroidKeystore, Provider::AndroidStrongbox].into_iter().find(|p| p.as_str() == s)
    }
}

/// Something that signs with the device key. The core never sees an Android key: it hands
/// the shell the bytes and gets the signature back.
pub trait Signer: Send + Sync {
    /// The key's public half.
    fn public_key(&self) -> &PublicKey;
    /// Sign `message` (the whole message; the algorithm hashes it).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
    /// Where the key lives.
    fn provider(&self) -> Provider;
    /// The key's attestation chain (DER certificates, leaf first); empty when there is none.
    fn attestation(&self) -> &[Vec<u8>] {
        &[]
    }
}

/// The signer the Android shell installed for this process, if any.
fn installed_slot() -> &'static RwLock<Option<Arc<dyn Signer>>> {
    static SLOT: RwLock<Option<Arc<dyn Signer>>> = RwLock::new(None);
    &SLOT
}

/// Install (or, with `None`, remove) the process's device signer. An agent opened afterwards
/// signs with it instead of the key file.
pub fn install(signer: Option<Arc<dyn Signer>>) {
    *installed_slot().write().unwrap_or_else(|p| p.into_inner()) = signer;
}

/// The installed device signer, if any.
pub fn installed() -> Option<Arc<dyn Signer>> {
    installed_slot().read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The text a package signature signs: the package digest (`package.sha256`).
pub fn package_message(digest: &str) -> Vec<u8> {
    format!("fotovakt-package-signature-v1\n{}\n", digest.to_ascii_lowercase()).into_bytes()
}

/// A signature as it travels in a package or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub algorithm: Algorithm,
    /// The signer's `SubjectPublicKeyInfo` DER, base64.
    pub public_key: String,
    /// SHA-256 of the public key's DER, hex: what `--trust` names.
    pub fingerprint: String,
    /// The signature, base64 (Ed25519: 64 bytes; ECDSA: DER).
    pub signature: String,
    /// The Keystore's attestation chain, base64 DER certificates, leaf first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestation: Vec<String>,
}

/// Why a [`Signed`] does not stand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// The public key or the signature cannot be read.
    #[error("unreadable signature: {0}")]
    Malformed(String),
    /// The fingerprint is not the public key's.
    #[error("its fingerprint is not that of its public key")]
    FingerprintMismatch,
    /// The signature does not verify: what it signs was changed, or it was made by another key.
    #[error("the signature does not verify (what it signs was changed)")]
    Invalid,
}

impl Signed {
    /// Sign `message` with `signer`.
    pub fn make(signer: &dyn Signer, message: &[u8]) -> Result<Signed, SignError> {
        let key = signer.public_key();
        let signature = signer.sign(message)?;
        if !key.verify(message, &signature) {
            // A signer that answers with something else (a shell bug, the wrong key) must not
            // produce a package that then fails every check.
            return Err(SignError::Failed("the signature it returned does not verify with its public key".into()));
        }
        Ok(Signed {
            algorithm: key.algorithm(),
            public_key: b64(key.spki()),
            fingerprint: key.fingerprint(),
            signature: b64(&signature),
            attestation: signer.attestation().iter().map(|c| b64(c)).collect(),
        })
    }

    /// The public key, when the signature over `message` stands.
    pub fn check(&self, message: &[u8]) -> Result<PublicKey, SignatureProblem> {
        let spki = unb64(&self.public_key).map_err(SignatureProblem::Malformed)?;
        let key =
            PublicKey::from_spki(self.algorithm, &spki).map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
        if !key.fingerprint().eq_ignore_ascii_case(&normalise_fingerprint(&self.fingerprint)) {
            return Err(SignatureProblem::FingerprintMismatch);
        }
        let signature = unb64(&self.signature).map_err(SignatureProblem::Malformed)?;
        if !key.verify(message, &signature) {
            return Err(SignatureProblem::Invalid);
        }
        Ok(key)
    }
}

/// A fingerprint as people write it (`SHA256:AB:CD…`, spaces, upper case) in the one form
/// compared: 64 lowercase hex digits. Anything else comes back as given, lower-cased.
pub fn normalise_fingerprint(s: &str) -> String {
    let t = s.trim();
    let t = t.strip_prefix("SHA256:").or_else(|| t.strip_prefix("sha256:")).unwrap_or(t);
    t.chars().filter(|c| !matches!(c, ':' | ' ' | '-')).collect::<String>().to_ascii_lowercase()
}

/// The device keys a receiver trusts: fingerprints from `--trust` and trust files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustList(BTreeSet<String>);

/// A trusted fingerprint that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {given:?} is not a key fingerprint (64 hex digits, SHA-256 of the public key)")]
pub struct BadFingerprint {
    pub origin: String,
    pub given: String,
}

impl TrustList {
    /// Add one fingerprint (`origin` says where it came from, for the error).
    pub fn add(&mut self, given: &str, origin: &str) -> Result<(), BadFingerprint> {
        let f = normalise_fingerprint(given);
        if f.len() != 64 || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadFingerprint { origin: origin.to_string(), given: given.to_string() });
        }
        self.0.insert(f);
        Ok(())
    }

    /// Add every fingerprint of a trust file: one per line, the first word of the line; blank
    /// lines and `#` comments are skipped, so `FINGERPRINT  phone 12, unit 4` is a line.
    pub fn add_file_text(&mut self, text: &str, path: &Path) -> Result<(), BadFingerprint> {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some(word) = line.split_whitespace().next() {
                self.add(word, &format!("{}:{}", path.display(), n + 1))?;
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Is the key with this fingerprint trusted?
    pub fn trusts(&self, fingerprint: &str) -> bool {
        self.0.contains(&normalise_fingerprint(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A P-256 signer in the core, standing in for the Keystore (which signs the same way).
    pub(crate) struct P256(p256::ecdsa::SigningKey, PublicKey);

    impl P256 {
        pub(crate) fn new() -> P256 {
            use p256::pkcs8::EncodePublicKey;
            let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
            let spki = p256::PublicKey::from(key.verifying_key()).to_public_key_der().expect("spki");
            let public = PublicKey::from_spki(Algorithm::EcdsaP256Sha256, spki.as_bytes()).expect("key");
            P256(key, public)
        }
    }

    impl Signer for P256 {
        fn public_key(&self) -> &PublicKey {
            &self.1
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            use p256::ecdsa::signature::Signer as _;
            let sig: p256::ecdsa::Signature = self.0.sign(message);
            Ok(sig.to_der().as_bytes().to_vec())
        }
        fn provider(&self) -> Provider {
            Provider::AndroidKeystore
        }
    }

    #[test]
    fn both_algorithms_sign_and_verify_and_a_changed_message_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ed, _) = KeyFile::load_or_create(&dir.path().join("device.key")).expect("key");
        let p = P256::new();
        for signer in [&ed as &dyn Signer, &p] {
            let msg = package_message("ab".repeat(32).as_str());
            let s = Signed::make(signer, &msg).expect("sign");
            assert_eq!(s.fingerprint, signer.public_key().fingerprint());
            assert_eq!(s.fingerprint.len(), 64);
            assert_eq!(s.check(&msg).expect("verifies"), *signer.public_key());
            assert_eq!(s.check(&package_message(&"cd".repeat(32))), Err(SignatureProblem::Invalid));
            let other = Signed { fingerprint: "00".repeat(32), ..s.clone() };
            assert_eq!(other.check(&msg), Err(SignatureProblem::FingerprintMismatch));
        }
    }

    #[test]
    fn a_key_of_one_algorithm_is_not_taken_for_the_other() {
        let p = P256::new();
        assert!(PublicKey::from_spki(Algorithm::Ed25519, p.public_key().spki()).is_err());
        assert!(PublicKey::from_spki(Algorithm::EcdsaP256Sha256, b"junk").is_err());
    }

    #[test]
    fn trust_lists_take_fingerprints_as_people_write_them() {
        let f = "ab".repeat(32);
        let mut t = TrustList::default();
        t.add(&format!("SHA256:{}", f.to_uppercase()), "--trust").expect("add");
        assert!(t.trusts(&f));
        assert!(t.add("abc", "--trust").is_err());
        let text = format!("# phones of unit 4\n{}  phone 12\n\n{}:{}\n", "cd".repeat(32), &f[..32], &f[32..]);
        t.add_file_text(&text, Path::new("trusted.txt")).expect("file");
        assert_eq!(t.len(), 2);
        let e = t.add_file_text("nonsense here\n", Path::new("t.txt")).expect_err("bad line");
        assert_eq!(e.origin, "t.txt:1");
    }
}
