//! Configuration: one TOML file, every field with a documented default.
//!
//! Resolution order for the file: `--config FILE`, else `$FOTOVAKT_CONFIG`, else
//! `<platform config dir>/fotovakt/config.toml` (from `directories`); a missing default
//! file is not an error, a missing named file is. Command-line flags override the file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the agent can be told. `Config::default()` is the documented default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Quarantine store directory. Default: `<platform data dir>/fotovakt/store`
    /// (`~/.local/share/fotovakt/store` on Linux).
    pub store: Option<PathBuf>,
    /// Camera folders to watch (not recursive). Default: none; `--camera` adds to them.
    pub cameras: Vec<PathBuf>,
    /// `fotovakt watch` waits for a camera folder that does not exist yet (checking every
    /// second) instead of exiting 2 as for a mistyped path; `--wait-for-cameras` says the same.
    /// The Android shell's watcher always waits (`DCIM/Camera` appears with the first photo).
    /// Default: `false`.
    pub wait_for_cameras: bool,
    /// Extra folders to treat as sync-enabled: the store may never lie inside them.
    pub sync_roots: Vec<PathBuf>,
    /// Reconcile the camera folders against the ledger this often while watching. Default: `5m`.
    #[serde(with = "humantime_serde_compat")]
    pub reconcile_interval: Duration,
    /// A signed ledger checkpoint is made at every durability barrier that advanced the
    /// ledger's head, and at least this often (checked on each reconcile tick). Default: `15m`.
    #[serde(with = "humantime_serde_compat")]
    pub checkpoint_interval: Duration,
    /// A file that got a create event but no close-after-write is processed once its size
    /// has been stable this long (hard links, FUSE). Default: `2s`.
    #[serde(with = "humantime_serde_compat")]
    pub settle: Duration,
    /// Largest file hashed and moved, in bytes (videos included). Default: 8 GiB.
    pub max_file_bytes: u64,
    /// Largest image decoded for the classifier, in bytes. Default: 64 MiB.
    pub max_image_bytes: u64,
    /// Duty schedule: when the officer is at work.
    pub duty: Duty,
    /// Work sites: circles matched against EXIF GPS.
    pub work_sites: Vec<WorkSite>,
    /// How the inputs turn into a decision.
    pub policy: PolicyConfig,
    /// The on-device classifier.
    pub classifier: ClassifierSettings,
    /// How long store files are kept; see [`RetentionConfig`].
    pub retention: RetentionConfig,
    /// How long anything is kept about an officer's own photos; see [`PrivacyConfig`].
    pub privacy: PrivacyConfig,
    /// Whether reads of camera files return exactly the bytes the camera wrote. On Android
    /// this is `false` while `ACCESS_MEDIA_LOCATION` is not granted: MediaProvider then
    /// redacts EXIF GPS on read, and the agent must not store (or delete the original on the
    /// strength of) altered bytes. The Android shell sets it from the permission at every
    /// start. Default: `true` (a host filesystem returns what was written).
    pub media_location_access: bool,
    /// What the first-run backlog pass ([`crate::agent::Agent::record_backlog`]) does with the
    /// photos already in the camera folders when the agent is installed. Default: `record`
    /// (hash and record them as kept, move none).
    pub backlog: Backlog,
    /// Out of sight first: the first thing done with a new camera file is one rename into a
    /// staging folder on the camera folder's filesystem that MediaStore does not index and no
    /// detected sync client walks; it is hashed and judged there, and a photo judged personal
    /// goes back to its name. `false` judges files where they lie (the behaviour before).
    /// Default: `true`.
    pub stash: bool,
    /// The staging folder. Default: `.fotovakt-staging` in the nearest ancestor of each camera
    /// folder that is on the camera folder's filesystem and outside every camera folder, sync
    /// root, sync client's folder and media folder (on a phone: the volume root,
    /// `/storage/emulated/0/.fotovakt-staging`). A folder named here must meet the same rules
    /// and be on every camera folder's filesystem, or the agent refuses to start.
    pub staging: Option<PathBuf>,
}

/// Photos that were in the camera folders before the agent was installed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backlog {
    /// Hash and record each as kept (rule `backlog`); nothing is moved. Officers tag what is
    /// case material, and a later release or tag works as for any kept photo.
    #[default]
    Record,
    /// Decide each like a new photo (sessions, work sites, classifier, duty hours).
    Quarantine,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store: None,
            cameras: Vec::new(),
            wait_for_cameras: false,
            sync_roots: Vec::new(),
            reconcile_interval: Duration::from_secs(300),
            checkpoint_interval: Duration::from_secs(900),
            settle: Duration::from_secs(2),
            max_file_bytes: 8 << 30,
            max_image_bytes: 64 << 20,
            duty: Duty::default(),
            work_sites: Vec::new(),
            policy: PolicyConfig::default(),
            classifier: ClassifierSettings::default(),
            retention: RetentionConfig::default(),
            privacy: PrivacyConfig::default(),
            media_location_access: true,
            backlog: Backlog::Record,
            stash: true,
            staging: None,
        }
    }
}

/// Retention of store files (`fotovakt purge`, the overdue warning, `stats.retention`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a quarantined item that was never exported may stay in the store before it is
    /// reported overdue (counted from its arrival in the store). Default: 90.
    pub quarantined_days: u32,
    /// Days an exported item is kept after the receiving case file acknowledged the package
    /// (`fotovakt ack`); then `purge` removes it. Default: 7.
    pub exported_days: u32,
    /// Also purge overdue items that were never exported. Default: `false`: nothing that never
    /// left the phone is removed unless this says so explicitly.
    pub purge_unexported: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { quarantined_days: 90, exported_days: 7, purge_unexported: false }
    }
}

/// What is kept about the officer's own photos, and for how long (the `[privacy]` table; the
/// README's "What fotovakt keeps about an officer's own photos" says it field by field).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// How long the minimal record of a photo decided `keep` (a keyed hash of the file, the
    /// decision, its rule and the day) is kept. After that only an anonymous keyed marker
    /// stays, so that the photo is not decided again, and it goes when the file leaves the
    /// camera folder. Pruned by `watch`, `scan` and `purge`. Default: `7d`.
    #[serde(with = "humantime_serde_compat")]
    pub keep_personal_decisions: Duration,
    /// How long an officer's correction is kept for on-device learning: the embedding of a
    /// tagged or released photo. When it runs out, the correction is deleted, and a released
    /// false positive loses its path, capture time, GPS and embedding (their custody events
    /// are pruned to their hashes). Default: `90d`.
    #[serde(with = "humantime_serde_compat")]
    pub keep_corrections: Duration,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig { keep_personal_decisions: 7 * DAY, keep_corrections: 90 * DAY }
    }
}

const DAY: Duration = Duration::from_secs(86_400);

/// The duty schedule, a list of weekly shifts in local time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Duty {
    /// Default: none (never on duty by schedule).
    pub shifts: Vec<Shift>,
}

/// One weekly shift, e.g. `{ days = ["mon","tue"], start = "07:00", end = "15:30" }`.
/// An `end` before `start` runs past midnight into the next day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub days: Vec<Weekday>,
    pub start: ClockTime,
    pub end: ClockTime,
}

/// Day of the week as written in the config: `mon` … `sun`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Days since Monday, 0..=6.
    pub fn index(self) -> u32 {
        self as u32
    }
}

/// A wall-clock time `HH:MM`, stored as minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ClockTime(pub u32);

impl std::str::FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (h, m) = s.split_once(':').ok_or_else(|| format!("time {s:?} is not HH:MM"))?;
        let h: u32 = h.parse().map_err(|_| format!("time {s:?}: bad hour"))?;
        let m: u32 = m.parse().map_err(|_| format!("time {s:?}: bad minute"))?;
        if h > 24 || m > 59 || (h == 24 && m != 0) {
            return Err(format!("time {s:?} is out of range"));
        }
        Ok(ClockTime(h * 60 + m))
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", self.0 / 60, self.0 % 60))
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A work site: a circle on the map. Photos whose EXIF GPS falls inside count as shot at work.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkSite {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// Radius in metres.
    pub radius_m: f64,
}

/// What a work-site match does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SiteAction {
    /// Quarantine every photo shot inside a work site.
    Quarantine,
    /// Only lower the classifier's bar (by `work_site_threshold_factor`).
    LowerThreshold,
}

/// What happens to a photo the model cannot judge (no runtime, video, HEIC) while on duty.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UnjudgedAction {
    Quarantine,
    Keep,
}

/// Policy settings; see the decision table in the README.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Classifier threshold on `case_score`. Default: none, use the model head's recall-biased threshold.
    pub threshold: Option<f32>,
    /// On duty the threshold is multiplied by this. Default: 0.6.
    pub on_duty_threshold_factor: f32,
    /// Inside a work site (when `work_site_action = "lower-threshold"`). Default: 0.3.
    pub work_site_threshold_factor: f32,
    /// Default: `quarantine`.
    pub work_site_action: SiteAction,
    /// Default: `quarantine` (recall first: a missed piece of evidence leaks).
    pub unjudged_on_duty: UnjudgedAction,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            threshold: None,
            on_duty_threshold_factor: 0.6,
            work_site_threshold_factor: 0.3,
            work_site_action: SiteAction::Quarantine,
            unjudged_on_duty: UnjudgedAction::Quarantine,
        }
    }
}

/// The shortest `settle` accepted.
pub const MIN_SETTLE: Duration = Duration::from_millis(100);

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no store configured and no platform data directory found; pass --store DIR")]
    NoStore,
}

impl Config {
    /// Parse a TOML text; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.message().to_string() + &span_hint(text, e.span()),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Read and parse a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml_str(&text, path)
    }

    /// Resolve the config file as documented: explicit path, `$FOTOVAKT_CONFIG`, platform default.
    pub fn resolve(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(p) = explicit {
            return Config::load(p);
        }
        if let Some(p) = std::env::var_os("FOTOVAKT_CONFIG") {
            return Config::load(Path::new(&p));
        }
        match default_config_path() {
            Some(p) if p.exists() => Config::load(&p),
            _ => Ok(Config::default()),
        }
    }

    /// The store directory: configured, else the platform data dir.
    pub fn store_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(s) = &self.store {
            return Ok(s.clone());
        }
        directories::ProjectDirs::from("no", "fotovakt", "fotovakt")
            .map(|d| d.data_dir().join("store"))
            .ok_or(ConfigError::NoStore)
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: origin.to_path_buf(), message };
        for site in &self.work_sites {
            if !(-90.0..=90.0).contains(&site.lat) || !(-180.0..=180.0).contains(&site.lon) {
                return Err(invalid(format!("work site {:?}: lat/lon out of range", site.name)));
            }
            if !(site.radius_m.is_finite() && site.radius_m > 0.0) {
                return Err(invalid(format!("work site {:?}: radius_m must be > 0", site.name)));
            }
        }
        let p = &self.policy;
        if let Some(t) = p.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(invalid(format!("policy.threshold {t} is not within 0..1")));
            }
        }
        for (name, f) in [
            ("on_duty_threshold_factor", p.on_duty_threshold_factor),
            ("work_site_threshold_factor", p.work_site_threshold_factor),
        ] {
            if !(f > 0.0 && f <= 1.0) {
                return Err(invalid(format!("policy.{name} {f} is not within (0, 1]")));
            }
        }
        if self.settle < MIN_SETTLE {
            return Err(invalid(format!(
                "settle {} is too short: it must be at least {}ms (a file still being written would be taken \
                 before it is finished, and checked again in a busy loop)",
                humantime::format_duration(self.settle),
                MIN_SETTLE.as_millis()
            )));
        }
        if self.reconcile_interval < Duration::from_secs(1) {
            return Err(invalid("reconcile_interval must be at least 1s".into()));
        }
        if self.checkpoint_interval < Duration::from_secs(1) {
            return Err(invalid("checkpoint_interval must be at least 1s".into()));
        }
        for (name, d) in [
            ("keep_personal_decisions", self.privacy.keep_personal_decisions),
            ("keep_corrections", self.privacy.keep_corrections),
        ] {
            if d < Duration::from_secs(1) || d > 36_500 * DAY {
                return Err(invalid(format!("privacy.{name} must be within 1s and 100 years")));
            }
        }
        if self.max_file_bytes == 0 || self.max_image_bytes == 0 {
            return Err(invalid("max_file_bytes and max_image_bytes must be > 0".into()));
        }
        Ok(())
    }
}

/// `<platform config dir>/config.toml`, e.g. `~/.config/fotovakt/config.toml`.
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("no", "fotovakt", "fotovakt").map(|d| d.config_dir().join("config.toml"))
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let start = r.start.min(text.len());
            let line = text[..start].matches('\n').count() + 1;
            let content = text.lines().nth(line - 1).unwrap_or("").trim();
            format!(" (line {line}: {content})")
        }
        None => String::new(),
    }
}

/// Durations written as humantime strings ("5m", "2s", "8h").
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like 30s, 5m or 2h ({e})")))
    }
}

/// Settings of the classifier, the `[classifier]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierSettings {
    /// Run the model at all. Default: true.
    pub enabled: bool,
    /// ONNX model file. Default: `models/efficientnet_lite0.int8.onnx` found beside the binary or in the source tree.
    pub model: Option<PathBuf>,
    /// Case head file. Default: `models/case_head.json` beside the model.
    pub head: Option<PathBuf>,
    /// ONNX Runtime shared library; default search: `ORT_DYLIB_PATH`, beside the binary,
    /// pip's `onnxruntime` (found by reading directories, never by running Python).
    pub ort_dylib: Option<PathBuf>,
    /// Intra-op threads per session. Default: 1.
    pub threads: usize,
    /// Use the EXIF thumbnail of a JPEG first (re-scored from the photo near the threshold). Default: true.
    pub thumbnail_first: bool,
    /// Cores one photo's JPEG decode may use, 1 or 2 (the entropy-coded data is split
    /// between them; phones have eight cores). Default: 2.
    pub decode_threads: usize,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        ClassifierSettings {
            enabled: true,
            model: None,
            head: None,
            ort_dylib: None,
            threads: 1,
            thumbnail_first: true,
            decode_threads: 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_documented_default() {
        let c = Config::from_toml_str("", Path::new("t.toml")).expect("empty config parses");
        assert_eq!(c, Config::default());
        assert_eq!(c.reconcile_interval, Duration::from_secs(300));
        assert_eq!(c.policy.work_site_action, SiteAction::Quarantine);
        assert_eq!(c.retention, RetentionConfig { quarantined_days: 90, exported_days: 7, purge_unexported: false });
        assert_eq!(c.privacy.keep_personal_decisions, Duration::from_secs(7 * 86_400));
        assert_eq!(c.privacy.keep_corrections, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn full_file_parses() {
        let text = r#"
            store = "/data/store"
            cameras = ["/sdcard/DCIM/Camera"]
            reconcile_interval = "30s"
            [duty]
            shifts = [{ days = ["mon", "fri"], start = "22:00", end = "06:00" }]
            [[work_sites]]
            name = "Storskog"
            lat = 69.66
            lon = 30.13
            radius_m = 500
            [policy]
            threshold = 0.4
            work_site_action = "lower-threshold"
            [retention]
            quarantined_days = 30
            exported_days = 0
            purge_unexported = true
            [privacy]
            keep_personal_decisions = "1s"
            keep_corrections = "30d"
        "#;
        let c = Config::from_toml_str(text, Path::new("t.toml")).expect("valid config parses");
        assert_eq!(c.duty.shifts[0].start, ClockTime(22 * 60));
        assert_eq!(c.duty.shifts[0].days, vec![Weekday::Mon, Weekday::Fri]);
        assert_eq!(c.work_sites[0].radius_m, 500.0);
        assert_eq!(c.policy.work_site_action, SiteAction::LowerThreshold);
        assert_eq!(c.reconcile_interval, Duration::from_secs(30));
        assert_eq!(c.retention, RetentionConfig { quarantined_days: 30, exported_days: 0, purge_unexported: true });
        assert_eq!(
            c.privacy,
            PrivacyConfig { keep_personal_decisions: Duration::from_secs(1), keep_corrections: 30 * DAY }
        );
    }

    #[test]
    fn bad_values_name_the_file_and_the_reason() {
        for (text, needle) in [
            ("stroe = \"/x\"", "unknown field"),
            ("[policy]\nthreshold = 3.0", "policy.threshold"),
            ("[[work_sites]]\nname='a'\nlat=95\nlon=0\nradius_m=1", "lat/lon"),
            ("[duty]\nshifts=[{days=['mon'],start='25:00',end='01:00'}]", "out of range"),
            ("reconcile_interval = \"soon\"", "reconcile_interval"),
            ("settle = \"0s\"", "settle 0s is too short: it must be at least 100ms"),
            ("settle = \"50ms\"", "settle 50ms is too short"),
            ("[duty]\nshifts=[{days=['moon'],start='01:00',end='02:00'}]", "unknown variant"),
            ("[retention]\npurge_everything = true", "unknown field"),
            ("[retention]\nexported_days = -1", "exported_days"),
            ("[privacy]\nkeep_personal_decisions = \"forever\"", "keep_personal_decisions"),
            ("[privacy]\nkeep_personal_decisions = \"0s\"", "privacy.keep_personal_decisions"),
            ("[privacy]\nkeep_gps = \"1d\"", "unknown field"),
        ] {
            let err = Config::from_toml_str(text, Path::new("/etc/f.toml")).expect_err(text).to_string();
            assert!(err.starts_with("config /etc/f.toml: "), "{err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
