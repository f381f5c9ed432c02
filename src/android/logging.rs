//! Logs of the Android library: logcat (tag `fotovakt`) on Android, stderr on a host JVM.
//!
//! logcat ends up in bug reports, and an EMM can collect those from a managed phone. So a
//! **release build** of the library (`--release`, which `:app:cargoNdk` uses for every
//! variant unless Gradle is given `-PrustDebug`; that is, `debug_assertions` off):
//!
//! * defaults to `warn` (`FOTOVAKT_LOG` still overrides it, though an app cannot set its
//!   environment on a phone), and
//! * formats every line with [`Redacted`]: the message with absolute paths replaced by
//!   `<path>`, plus only the fields that cannot name a file, a place or a case: numbers and
//!   booleans (item numbers, counts, milliseconds, bytes) and the few enumerations in
//!   [`SAFE_TEXT`] (also path-redacted). A `path`, `case`, `rule` or `session` field is dropped
//!   whatever the level, so even a line a later change adds at WARN cannot leak one.
//!
//! A **debug build** logs `debug` with every field (the core's DEBUG lines name the files and
//! cases its INFO lines number), as the host CLI does at `-vv`.
//!
//! The host CLI (`src/cli`) installs its own subscriber and is not affected: an admin on a
//! host may want file paths at `-v`.

use std::fmt;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether this build of the library logs as a release build.
pub const RELEASE: bool = !cfg!(debug_assertions);

/// Text fields a release build keeps (after path redaction): enumerations and error codes.
/// Everything else that is not a number or a boolean is dropped.
pub const SAFE_TEXT: &[&str] = &["outcome", "source", "code", "kind", "policy", "error", "state"];

/// The filter a build uses when `FOTOVAKT_LOG` is not set. A debug build shows DEBUG, where
/// the core names files and cases.
pub fn default_filter(release: bool) -> &'static str {
    if release {
        "warn"
    } else {
        "debug"
    }
}

/// Installs the log subscriber once: logcat on Android, stderr elsewhere.
pub(super) fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("FOTOVAKT_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter(RELEASE)));
        let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
        #[cfg(target_os = "android")]
        let builder = builder.without_time().with_writer(logcat::MakeLogcat);
        #[cfg(not(target_os = "android"))]
        let builder = builder.with_writer(std::io::stderr);
        // Fails only if the host process already installed a subscriber: keep that one.
        let _ = if RELEASE { builder.event_format(Redacted).try_init() } else { builder.try_init() };
    });
}

/// The release build's line format: `LEVEL target: message field=value…`, with only the
/// fields that cannot name a file, a place or a case (see the module's documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct Redacted;

impl<S, N> FormatEvent<S, N> for Redacted
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = SafeFields::default();
        event.record(&mut fields);
        write!(writer, "{} {}: {}", meta.level(), meta.target(), redact_paths(&fields.message))?;
        for (name, value) in &fields.kept {
            write!(writer, " {name}={value}")?;
        }
        writeln!(writer)
    }
}

/// Collects the message and the fields a release line may carry.
#[derive(Default)]
struct SafeFields {
    message: String,
    kept: Vec<(&'static str, String)>,
}

impl SafeFields {
    fn text(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else if SAFE_TEXT.contains(&field.name()) {
            self.kept.push((field.name(), redact_paths(&value)));
        }
    }
}

impl Visit for SafeFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.kept.push((field.name(), value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.kept.push((field.name(), value.to_string()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.kept.push((field.name(), value.to_string()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.kept.push((field.name(), value.to_string()));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format!("{value:?}"));
    }
}

/// `text` with every absolute path (a `/` at the start of a word, up to the next blank,
/// quote, comma or closing bracket) replaced by `<path>`.
pub fn redact_paths(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut in_path = false;
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        if in_path {
            // A colon ends a path where a message goes on after it ("<path>: disk full").
            let colon_end = c == ':' && next.is_none_or(char::is_whitespace);
            if c.is_whitespace() || colon_end || matches!(c, '"' | '\'' | ',' | ')' | ']' | '}' | '>') {
                in_path = false;
                out.push(c);
            }
        } else if c == '/'
            && prev.is_none_or(|p| p.is_whitespace() || matches!(p, '"' | '\'' | '=' | '(' | '[' | '{' | ':' | '<'))
        {
            in_path = true;
            out.push_str("<path>");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(target_os = "android")]
mod logcat {
    //! A `tracing_subscriber` writer that sends each formatted line to logcat via liblog, at
    //! the priority of its level.
    use std::ffi::CString;
    use std::io::{self, Write};
    use std::os::raw::{c_char, c_int};

    use tracing::{Level, Metadata};

    #[link(name = "log")]
    extern "C" {
        fn __android_log_write(prio: c_int, tag: *const c_char, text: *const c_char) -> c_int;
    }

    // android/log.h
    const ANDROID_LOG_DEBUG: c_int = 3;
    const ANDROID_LOG_INFO: c_int = 4;
    const ANDROID_LOG_WARN: c_int = 5;
    const ANDROID_LOG_ERROR: c_int = 6;

    pub struct MakeLogcat;

    pub struct Line {
        text: Vec<u8>,
        prio: c_int,
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeLogcat {
        type Writer = Line;
        fn make_writer(&'a self) -> Line {
            Line { text: Vec::with_capacity(256), prio: ANDROID_LOG_INFO }
        }
        fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
            let prio = match *meta.level() {
                Level::ERROR => ANDROID_LOG_ERROR,
                Level::WARN => ANDROID_LOG_WARN,
                Level::INFO => ANDROID_LOG_INFO,
                _ => ANDROID_LOG_DEBUG,
            };
            Line { text: Vec::with_capacity(256), prio }
        }
    }

    impl Write for Line {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.text.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Line {
        fn drop(&mut self) {
            let text: Vec<u8> = self.text.iter().copied().filter(|b| *b != 0).collect();
            if let (Ok(tag), Ok(msg)) = (CString::new("fotovakt"), CString::new(text)) {
                // SAFETY: both pointers are valid NUL-terminated strings for the call's duration.
                unsafe {
                    __android_log_write(self.prio, tag.as_ptr(), msg.as_ptr());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, for reading back what a subscriber wrote.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    /// Runs `body` under the release format at `level`, returning what it logged.
    pub(crate) fn release_log(level: &str, body: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_ansi(false)
            .with_writer(out.clone())
            .event_format(Redacted)
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        out.text()
    }

    #[test]
    fn release_builds_default_to_warn_and_debug_builds_to_debug() {
        assert_eq!(default_filter(true), "warn");
        assert_eq!(default_filter(false), "debug");
    }

    #[test]
    fn release_lines_keep_numbers_and_enumerations_and_drop_paths_and_case_ids() {
        let path = "/storage/emulated/0/DCIM/Camera/IMG_20240101_1200.jpg";
        let text = release_log("trace", || {
            tracing::info!(path = %path, item = 42_i64, outcome = ?crate::OutcomeKind::Quarantined, source = "session", rule = "session CASE-77", ms = 3.5, "decided");
            tracing::info!(item = 42_i64, case = "CASE-77", "tagged");
            tracing::warn!(error = %format!("reading {path}: permission denied"), "could not handle file");
            tracing::error!("export of {} failed", path);
            tracing::info!(session = "CASE-77", files = 3_u64, retried = false, "session");
        });
        for leak in [path, "IMG_20240101_1200", "CASE-77", "DCIM"] {
            assert!(!text.contains(leak), "{leak:?} leaked into a release log:\n{text}");
        }
        for kept in ["item=42", "outcome=Quarantined", "source=session", "ms=3.5", "files=3", "retried=false"] {
            assert!(text.contains(kept), "{kept} missing from:\n{text}");
        }
        assert!(text.contains("error=reading <path>: permission denied"), "{text}");
        assert!(text.contains("export of <path> failed"), "{text}");
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    /// Runs `body` under the plain (debug build, host CLI) format at `level`.
    fn plain_log(level: &str, body: impl FnOnce()) -> String {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_ansi(false)
            .with_writer(out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, body);
        out.text()
    }

    /// A session photo quarantined, tagged, exported, acknowledged and another released: every
    /// line the core logs for an officer's day.
    fn officers_day(dir: &std::path::Path) {
        use crate::agent::Agent;
        let camera = dir.join("DCIM/Camera");
        std::fs::create_dir_all(&camera).expect("camera folder");
        let config = crate::config::Config {
            store: Some(dir.join("store")),
            cameras: vec![camera.clone()],
            ..crate::config::Config::default()
        };
        let agent = Agent::open_without_model(config).expect("agent");
        agent.session_start("CASE-LOG-77", Some("officer-9"), None).expect("session");
        let mut items = Vec::new();
        for (i, name) in ["IMG_SECRET_ONE.jpg", "IMG_SECRET_TWO.jpg"].iter().enumerate() {
            let photo = camera.join(name);
            let jpeg = crate::sample::SamplePhoto { seed: i as u64 + 7, ..Default::default() }.jpeg();
            std::fs::write(&photo, jpeg).expect("photo");
            items.push(agent.on_media(&photo).item.expect("quarantined"));
        }
        agent.session_stop().expect("stop");
        agent.tag(&items[0].to_string(), "CASE-LOG-78", Some("officer-9"), None).expect("tag");
        agent.export("CASE-LOG-78", &dir.join("out.zip"), Some("officer-9")).expect("export");
        agent.ack("CASE-LOG-78", Some("receiver")).expect("ack");
        agent.release(&items[1].to_string(), "private", Some("officer-9")).expect("release");
    }

    const LEAKS: &[&str] = &["IMG_SECRET_ONE", "IMG_SECRET_TWO", "CASE-LOG-77", "CASE-LOG-78", "DCIM", "out.zip"];

    #[test]
    fn the_cores_info_lines_of_an_officers_day_name_items_never_files_or_cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = plain_log("fotovakt=info", || officers_day(dir.path()));
        for leak in LEAKS {
            assert!(!text.contains(leak), "{leak:?} in an INFO line:\n{text}");
        }
        for line in ["decided", "tagged", "exported", "acknowledged", "released", "case session opened"] {
            assert!(text.contains(line), "no {line:?} line:\n{text}");
        }
        assert!(text.contains("item=1") && text.contains("item=2"), "{text}");
        // A host admin who wants the files asks for DEBUG (`-vv`); so does a debug build.
        let dir = tempfile::tempdir().expect("tempdir");
        let debug = plain_log("fotovakt=debug", || officers_day(dir.path()));
        assert!(debug.contains("IMG_SECRET_ONE") && debug.contains("CASE-LOG-78"), "{debug}");
    }

    #[test]
    fn a_release_build_logs_no_file_or_case_even_at_trace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = release_log("trace", || officers_day(dir.path()));
        for leak in LEAKS {
            assert!(!text.contains(leak), "{leak:?} in a release line:\n{text}");
        }
        assert!(!text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("decided") && text.contains("item=1"), "{text}");
    }

    #[test]
    fn path_redaction_takes_absolute_paths_only() {
        assert_eq!(redact_paths("moved /a/b c.jpg to \"/x/y\" (/z)"), "moved <path> c.jpg to \"<path>\" (<path>)");
        assert_eq!(redact_paths("path=/data/user/0/x, next"), "path=<path>, next");
        assert_eq!(redact_paths("3/4 done, ratio 1/2"), "3/4 done, ratio 1/2");
        assert_eq!(redact_paths("store: /data/x: disk full"), "store: <path>: disk full");
    }
}
