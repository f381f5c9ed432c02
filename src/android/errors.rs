//! Errors across JNI. Every failure the bridge hands to Java is a
//! `no.fotovakt.core.FotovaktException` (or, for a refusal, its subclass `RefusedException`)
//! carrying a stable [`Code`] taken from the Rust error's variant, never parsed from its text:
//! the app branches on the code (`ReviewActivity` falls back to platform decoding only on
//! [`Code::PreviewUnsupported`]), the message is for logs.
//!
//! The Java enum `FotovaktException.Code` has one constant per [`Code`]; the host harness
//! reads [`Code::ALL`] through `NativeCore.errorCodes()` and checks both lists agree.

use crate::agent::{self, Refusal};
use crate::ledger::LedgerError;

/// The exception class for everything but refusals.
const EXCEPTION: &str = "no/fotovakt/core/FotovaktException";
/// The exception class for refusals (the core declined and changed nothing).
const REFUSED: &str = "no/fotovakt/core/RefusedException";

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// What went wrong, as Java sees it: the name of a `FotovaktException.Code` constant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            /// Every code, in the order the Java enum declares them.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The Java constant's name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    /// The configuration is invalid.
    Config = "CONFIG",
    /// The store cannot be opened or used.
    Store = "STORE",
    /// The ledger failed.
    Ledger = "LEDGER",
    /// No item matches the key.
    NoSuchItem = "NO_SUCH_ITEM",
    /// The hash prefix matches several items.
    AmbiguousItem = "AMBIGUOUS_ITEM",
    /// A move into or out of the store failed.
    Move = "MOVE",
    /// A case package could not be written.
    Package = "PACKAGE",
    /// A file could not be opened safely.
    Open = "OPEN",
    /// An I/O operation failed.
    Io = "IO",
    /// The classifier could not judge a keyframe.
    Keyframe = "KEYFRAME",
    /// A tagged file could not be quarantined.
    TagFailed = "TAG_FAILED",
    /// A file offered for import is not evidence the core can take.
    NotEvidence = "NOT_EVIDENCE",
    /// A case ID is required.
    RefusedCaseIdRequired = "REFUSED_CASE_ID_REQUIRED",
    /// A reason is required to release.
    RefusedReasonRequired = "REFUSED_REASON_REQUIRED",
    /// A path outside the camera folders and the store.
    RefusedOutsideCameras = "REFUSED_OUTSIDE_CAMERAS",
    /// A path that is not a file of the store.
    RefusedNotAStorePath = "REFUSED_NOT_A_STORE_PATH",
    /// A store file no item names.
    RefusedUnknownStoreFile = "REFUSED_UNKNOWN_STORE_FILE",
    /// The item is not in the store now.
    RefusedNotQuarantined = "REFUSED_NOT_QUARANTINED",
    /// Tag of an item not in the store.
    RefusedTagNotInStore = "REFUSED_TAG_NOT_IN_STORE",
    /// A quarantined item without a store file.
    RefusedNoStoreFile = "REFUSED_NO_STORE_FILE",
    /// The original path does not match the intake event.
    RefusedOriginalPathMismatch = "REFUSED_ORIGINAL_PATH_MISMATCH",
    /// The original path is inside the store.
    RefusedOriginalInStore = "REFUSED_ORIGINAL_IN_STORE",
    /// The original path is outside the camera folders.
    RefusedOriginalOutsideCameras = "REFUSED_ORIGINAL_OUTSIDE_CAMERAS",
    /// The original folder is gone.
    RefusedOriginalFolderGone = "REFUSED_ORIGINAL_FOLDER_GONE",
    /// A recovered item of unknown origin, and no camera folder to release it into.
    RefusedReleaseNeedsCamera = "REFUSED_RELEASE_NEEDS_CAMERA",
    /// The session ended at once.
    RefusedSessionEnded = "REFUSED_SESSION_ENDED",
    /// The export destination is not empty.
    RefusedTargetNotEmpty = "REFUSED_TARGET_NOT_EMPTY",
    /// A destination in a synced or media-indexed place.
    RefusedOutputInSyncedPlace = "REFUSED_OUTPUT_IN_SYNCED_PLACE",
    /// A destination inside the store.
    RefusedOutputInStore = "REFUSED_OUTPUT_IN_STORE",
    /// A report destination without a file name.
    RefusedNotAFileName = "REFUSED_NOT_A_FILE_NAME",
    /// No item has this case ID.
    RefusedUnknownCase = "REFUSED_UNKNOWN_CASE",
    /// None of the case's items is in the store.
    RefusedNothingInStore = "REFUSED_NOTHING_IN_STORE",
    /// Every exported item is already acknowledged.
    RefusedAlreadyAcknowledged = "REFUSED_ALREADY_ACKNOWLEDGED",
    /// The case was never exported.
    RefusedNotExported = "REFUSED_NOT_EXPORTED",
    /// The store has no usable device key to sign with.
    RefusedNoDeviceKey = "REFUSED_NO_DEVICE_KEY",
    /// Anchoring again while the head anchor is there.
    RefusedHeadPresent = "REFUSED_HEAD_PRESENT",
    /// An argument from Java is null or unusable.
    Argument = "ARGUMENT",
    /// No running agent has this handle.
    NotRunning = "NOT_RUNNING",
    /// The core cannot preview this file; decode it on the platform.
    PreviewUnsupported = "PREVIEW_UNSUPPORTED",
    /// A JNI call failed.
    Jni = "JNI",
    /// A bug in the core: a panic, an answer it could not encode.
    Internal = "INTERNAL",
}

impl Code {
    /// Refusals are thrown as `RefusedException`.
    pub fn is_refusal(self) -> bool {
        self.as_str().starts_with("REFUSED_")
    }

    /// The Java class thrown for this code.
    pub(super) fn class(self) -> &'static str {
        if self.is_refusal() {
            REFUSED
        } else {
            EXCEPTION
        }
    }
}

/// An error on its way to Java: the code it is thrown with and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeError {
    pub code: Code,
    pub message: String,
}

impl BridgeError {
    pub fn new(code: Code, message: impl Into<String>) -> BridgeError {
        BridgeError { code, message: message.into() }
    }

    /// A null or unusable argument from Java.
    pub fn argument(message: impl Into<String>) -> BridgeError {
        BridgeError::new(Code::Argument, message)
    }

    /// A JNI call that failed (`what` names it).
    pub fn jni(what: &str, e: impl std::fmt::Display) -> BridgeError {
        BridgeError::new(Code::Jni, format!("{what}: {e}"))
    }
}

impl From<agent::Error> for BridgeError {
    fn from(e: agent::Error) -> BridgeError {
        BridgeError { code: code_of(&e), message: e.to_string() }
    }
}

impl From<crate::config::ConfigError> for BridgeError {
    fn from(e: crate::config::ConfigError) -> BridgeError {
        BridgeError::new(Code::Config, e.to_string())
    }
}

/// The code of an agent error, from its variant (a refusal's from the refusal's). The match
/// is exhaustive: a new variant does not compile until it has a code here and in Java.
pub fn code_of(e: &agent::Error) -> Code {
    use agent::Error;
    match e {
        Error::Config(_) => Code::Config,
        Error::Store(_) => Code::Store,
        Error::Ledger(LedgerError::NoSuchItem(_)) => Code::NoSuchItem,
        Error::Ledger(LedgerError::Ambiguous(_)) => Code::AmbiguousItem,
        Error::Ledger(_) => Code::Ledger,
        Error::Move(_) => Code::Move,
        Error::Package(_) => Code::Package,
        Error::Refused(r) => refusal_code(r),
        Error::Open { .. } => Code::Open,
        Error::Io { .. } => Code::Io,
        Error::Keyframe { .. } => Code::Keyframe,
        Error::TagFailed { .. } => Code::TagFailed,
        Error::NotEvidence { .. } => Code::NotEvidence,
        Error::Json { .. } => Code::Internal,
    }
}

/// The code of a refusal: `REFUSED_` and the variant's name.
fn refusal_code(r: &Refusal) -> Code {
    match r {
        Refusal::CaseIdRequired => Code::RefusedCaseIdRequired,
        Refusal::ReasonRequired => Code::RefusedReasonRequired,
        Refusal::OutsideCameras { .. } => Code::RefusedOutsideCameras,
        Refusal::NotAStorePath { .. } => Code::RefusedNotAStorePath,
        Refusal::UnknownStoreFile { .. } => Code::RefusedUnknownStoreFile,
        Refusal::NotQuarantined { .. } => Code::RefusedNotQuarantined,
        Refusal::TagNotInStore { .. } => Code::RefusedTagNotInStore,
        Refusal::NoStoreFile { .. } => Code::RefusedNoStoreFile,
        Refusal::OriginalPathMismatch { .. } => Code::RefusedOriginalPathMismatch,
        Refusal::OriginalInStore { .. } => Code::RefusedOriginalInStore,
        Refusal::OriginalOutsideCameras { .. } => Code::RefusedOriginalOutsideCameras,
        Refusal::OriginalFolderGone { .. } => Code::RefusedOriginalFolderGone,
        Refusal::ReleaseNeedsCamera { .. } => Code::RefusedReleaseNeedsCamera,
        Refusal::SessionEnded => Code::RefusedSessionEnded,
        Refusal::TargetNotEmpty { .. } => Code::RefusedTargetNotEmpty,
        Refusal::OutputInSyncedPlace { .. } => Code::RefusedOutputInSyncedPlace,
        Refusal::OutputInStore { .. } => Code::RefusedOutputInStore,
        Refusal::NotAFileName { .. } => Code::RefusedNotAFileName,
        Refusal::UnknownCase { .. } => Code::RefusedUnknownCase,
        Refusal::NothingInStore { .. } => Code::RefusedNothingInStore,
        Refusal::AlreadyAcknowledged { .. } => Code::RefusedAlreadyAcknowledged,
        Refusal::NotExported { .. } => Code::RefusedNotExported,
        Refusal::NoDeviceKey { .. } => Code::RefusedNoDeviceKey,
        Refusal::HeadPresent => Code::RefusedHeadPresent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The Java enum, read from the source the app and the host harness compile.
    const JAVA: &str = include_str!("../../android/app/src/main/java/no/fotovakt/core/FotovaktException.java");

    #[test]
    fn the_java_enum_has_exactly_the_rust_codes_and_unknown() {
        let body = &JAVA[JAVA.find("public enum Code {").expect("enum Code")..];
        let mut java = Vec::new();
        for line in body.lines().skip(1).map(str::trim) {
            if line.is_empty() || line.starts_with("/**") || line.starts_with('*') {
                continue;
            }
            java.push(line.trim_end_matches([',', ';']));
            if line.ends_with(';') {
                break;
            }
        }
        let mut rust: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        rust.push("UNKNOWN");
        assert_eq!(java, rust, "FotovaktException.Code lists the codes in Code::ALL, in order, then UNKNOWN");
    }

    #[test]
    fn refusals_are_thrown_as_refused_exception_with_their_own_code() {
        let cases: Vec<(agent::Error, Code)> = vec![
            (Refusal::CaseIdRequired.into(), Code::RefusedCaseIdRequired),
            (
                Refusal::NotQuarantined { item: 7, state: crate::ledger::ItemState::Released }.into(),
                Code::RefusedNotQuarantined,
            ),
            (Refusal::OutsideCameras { path: PathBuf::from("/tmp/x.jpg") }.into(), Code::RefusedOutsideCameras),
            (Refusal::UnknownCase { case: "C-1".into() }.into(), Code::RefusedUnknownCase),
        ];
        for (e, code) in cases {
            let b = BridgeError::from(e);
            assert_eq!(b.code, code, "{}", b.message);
            assert_eq!(b.code.class(), REFUSED);
        }
        let io = agent::Error::Io {
            about: "reading",
            path: PathBuf::from("/x"),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        let b = BridgeError::from(io);
        assert_eq!((b.code, b.code.class()), (Code::Io, EXCEPTION));
        let missing = BridgeError::from(agent::Error::Ledger(LedgerError::NoSuchItem("#9".into())));
        assert_eq!(missing.code, Code::NoSuchItem);
    }

    #[test]
    fn codes_are_unique_screaming_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "{s}");
            assert_eq!(c.is_refusal(), s.starts_with("REFUSED_"), "{s}");
        }
    }
}
