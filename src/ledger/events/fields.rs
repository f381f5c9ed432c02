//! The small typed values custody events carry (decisions, sources, reasons, formats).

use serde::{Deserialize, Serialize};

/// What the decision was: move the file into the store, or leave it where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Quarantine,
    Keep,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Quarantine => "quarantine",
            Action::Keep => "keep",
        }
    }
}

/// Which rule decided an item, as stored in `items.source` and `decided` events: the policy's
/// rules, plus `recovered` for a store file adopted at recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    Manual,
    Released,
    Session,
    WorkSite,
    Classifier,
    DutyHours,
    Default,
    /// Adopted at recovery: a verified store file whose ledger rows a power cut lost.
    Recovered,
}

impl ItemSource {
    const ALL: [ItemSource; 8] = [
        ItemSource::Manual,
        ItemSource::Released,
        ItemSource::Session,
        ItemSource::WorkSite,
        ItemSource::Classifier,
        ItemSource::DutyHours,
        ItemSource::Default,
        ItemSource::Recovered,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemSource::Manual => "manual",
            ItemSource::Released => "released",
            ItemSource::Session => "session",
            ItemSource::WorkSite => "work_site",
            ItemSource::Classifier => "classifier",
            ItemSource::DutyHours => "duty_hours",
            ItemSource::Default => "default",
            ItemSource::Recovered => "recovered",
        }
    }

    /// The source stored as `s`, if it is one.
    pub fn parse(s: &str) -> Option<ItemSource> {
        ItemSource::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for ItemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ItemSource {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// An item's source reads as its stored name wherever text is expected (the policy parses it
/// back with `policy::Source::parse(&item.source)`).
impl std::ops::Deref for ItemSource {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Compares with the stored name (`item.source == "classifier"`).
impl PartialEq<&str> for ItemSource {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why an item was purged (its time in the store was up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeReason {
    /// Exported, acknowledged by the receiver, and `exported_days` have passed.
    Acknowledged,
    /// Never exported and `quarantined_days` have passed.
    Unexported,
}

impl PurgeReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PurgeReason::Acknowledged => "acknowledged",
            PurgeReason::Unexported => "unexported",
        }
    }
}

/// Why an item's personal data left the ledger (a `forgotten` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgetReason {
    /// The officer's correction (a release: "not case material") ran out (`keep_corrections`):
    /// the path, capture time, GPS and embedding of the released photo go.
    CorrectionExpired,
    /// The ledger was brought to schema 2: a photo an earlier version had kept as personal is
    /// now a keyed record, and what the earlier version wrote about it goes.
    Upgrade,
    /// An item held while media-location access was off was decided `keep` once access came
    /// back, or an item whose move into the store did not happen was decided `keep` when it
    /// was tried again: it is the officer's own photo, kept as a keyed record only.
    DecidedPersonal,
}

impl ForgetReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ForgetReason::CorrectionExpired => "correction_expired",
            ForgetReason::Upgrade => "upgrade",
            ForgetReason::DecidedPersonal => "decided_personal",
        }
    }
}

/// How a case package is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Dir,
    Zip,
    /// A zip encrypted to its receivers' age keys (`NAME.zip.age`).
    Age,
}

impl PackageFormat {
    /// `.zip` (any case) means a zip archive, `.age` an encrypted one; anything else a directory.
    pub fn for_path(path: &std::path::Path) -> PackageFormat {
        match path.extension() {
            Some(e) if e.eq_ignore_ascii_case("zip") => PackageFormat::Zip,
            Some(e) if e.eq_ignore_ascii_case("age") => PackageFormat::Age,
            _ => PackageFormat::Dir,
        }
    }
}

/// Why a `device_key` event was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyReason {
    /// The store was created with it.
    NewStore,
    /// A store from before device keys got its first.
    Added,
    /// The key file was gone; a new key was made.
    KeyFileMissing,
    /// The key file could not be used (damaged, or readable by others); it was set aside and a
    /// new key made.
    KeyFileUnusable,
    /// The store now signs with another key than the one recorded last (a new Keystore key,
    /// the Keystore given up for the key file or back, or a key file swapped).
    Changed,
}

/// What a missing or damaged head anchor was, when an officer anchored the ledger again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadFound {
    Missing,
    Unreadable,
}

/// Where imported evidence came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportOrigin {
    /// A dedicated camera's card, or a folder an officer named (`fotovakt import`).
    Card,
    /// The app's case camera (the camera app wrote into the app's own provider).
    CaseCamera,
}

impl ImportOrigin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportOrigin::Card => "card",
            ImportOrigin::CaseCamera => "case_camera",
        }
    }
}
