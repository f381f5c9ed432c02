//! Fuzz target bodies, shared by the cargo-fuzz crate in `fuzz/` and by
//! `tests/fuzz_regressions.rs`, which replays the committed corpus on stable.
//!
//! Each function feeds untrusted bytes through exactly the functions the agent calls, with
//! the agent's real limits, and asserts the invariants the rest of the agent relies on. A
//! violated invariant panics (the fuzzer reports it as a crash); bad input itself must come
//! back as a clear `Err`, never as a panic, a hang or an unbounded allocation.

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fast_image_resize::Resizer;

use crate::classify::decode::{self, Format, SIDE};
use crate::config::{ClockTime, Config};
use crate::ledger::{event_hash, Event};
use crate::media::{self, ExifFacts, MediaKind};
use crate::policy::Source;
use crate::quarantine::Store;

/// What intake made of one file's bytes.
#[derive(Debug)]
pub struct Intake {
    /// The sniffed kind, from the first 64 bytes as the agent reads them.
    pub kind: MediaKind,
    /// EXIF facts, parsed for the kinds the agent parses them for.
    pub exif: ExifFacts,
    /// The classifier's first decode (a thumbnail is then refined from the photo, as near
    /// the threshold); `None` when the agent does not
    /// decode this kind (video, HEIC, unknown) or the file is over `max_image_bytes`.
    pub decoded: Option<decode::Source>,
}

thread_local! {
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Bytes of one camera-folder file → `MediaKind::sniff` → `ExifFacts::parse` → the
/// classifier's decode to the `[3, 224, 224]` model input (thumbnail path, then the
/// refine path the classifier takes near its threshold), without ONNX Runtime.
///
/// `Err` is the message the agent logs for a file the classifier cannot decode.
pub fn intake(data: &[u8]) -> Result<Intake, String> {
    // As in `Agent::intake`: bytes are kept (and decoded) only up to max_image_bytes.
    let limit = Config::default().max_image_bytes;
    let bytes = (data.len() as u64 <= limit).then_some(data);
    let head = &data[..data.len().min(64)];
    let kind = MediaKind::sniff(head);
    assert_eq!(kind, MediaKind::sniff(data), "sniffing 64 bytes and the whole file disagree");
    let exif = match (bytes, kind) {
        (Some(b), MediaKind::Jpeg | MediaKind::Tiff | MediaKind::Png | MediaKind::Webp | MediaKind::Heif) => {
            ExifFacts::parse(b)
        }
        _ => ExifFacts::default(),
    };
    check_exif(&exif);
    if let Some(r) = &exif.thumbnail {
        assert!(r.start + 2 <= r.end && r.end <= data.len(), "thumbnail range {r:?} outside {} bytes", data.len());
    }
    let decoded = match bytes {
        // As in `Agent::assess`: only decodable kinds reach the classifier, with intake's EXIF.
        Some(b) if kind.is_decodable_image() => Some(classify_decode(b, &exif)?),
        _ => None,
    };
    Ok(Intake { kind, exif, decoded })
}

fn check_exif(exif: &ExifFacts) {
    if let Some(o) = exif.orientation {
        assert!((1..=8).contains(&o), "orientation {o} outside 1..=8");
    }
    if let Some((lat, lon)) = exif.gps {
        assert!(lat.is_finite() && lon.is_finite(), "GPS not finite: {lat} {lon}");
        assert!(lat.abs() <= 90.0 && lon.abs() <= 180.0, "GPS out of range: {lat} {lon}");
    }
}

/// What `Classifier::assess` does before inference: the thumbnail-first decode and, when
/// that came from the thumbnail, the refine decode of the photo itself.
fn classify_decode(bytes: &[u8], exif: &ExifFacts) -> Result<decode::Source, String> {
    if decode::sniff(bytes) == Format::Jpeg {
        let exif = decode::jpeg_exif(bytes);
        assert!((1..=8).contains(&exif.orientation), "jpeg_exif orientation {}", exif.orientation);
        if let Some(r) = &exif.thumbnail {
            assert!(r.start < r.end && r.end <= bytes.len(), "thumbnail range {r:?} outside {} bytes", bytes.len());
        }
    }
    RESIZER.with(|r| {
        let mut resizer = r.borrow_mut();
        // the agent's settings: two decode threads, intake's EXIF facts
        let opts = |thumbnail| decode::Options { thumbnail, threads: 2 };
        let first =
            decode::prepare_with(&mut resizer, bytes, Some(exif), opts(true)).map_err(|e| clear(e.to_string()))?;
        check_input(&first.input);
        if !first.can_refine {
            return Ok(first.source);
        }
        assert_eq!(first.source, decode::Source::Thumbnail, "only a thumbnail can be refined");
        let full =
            decode::prepare_with(&mut resizer, bytes, Some(exif), opts(false)).map_err(|e| clear(e.to_string()))?;
        check_input(&full.input);
        assert!(!full.can_refine, "the refined decode offers another refinement");
        Ok(first.source)
    })
}

fn clear(message: String) -> String {
    assert!(!message.trim().is_empty(), "empty error message");
    message
}

fn check_input(input: &[f32]) {
    assert_eq!(input.len(), 3 * SIDE * SIDE, "model input is not [3, 224, 224]");
    let (lo, hi) = (-127.0 / 128.0, 1.0);
    if let Some(v) = input.iter().find(|v| !(v.is_finite() && (lo..=hi).contains(*v))) {
        panic!("model input value {v} outside [{lo}, {hi}]");
    }
}

/// Bytes → `Config::from_toml_str` (a parsed config re-serialises and parses to the same
/// value), and every line through the parsers of names and ledger/store data: clock times,
/// durations, `Store::parse_object_name`, `Source::parse`, `media::is_candidate_name`,
/// event data JSON and `event_hash`.
///
/// `Err` is the message a user would see for a config file with these bytes.
pub fn config(data: &[u8]) -> Result<Config, String> {
    for line in data.split(|&b| b == b'\n') {
        text_parsers(line);
    }
    // `Config::load` reads the file with read_to_string: non-UTF-8 is an I/O error there.
    let text = std::str::from_utf8(data).map_err(|e| format!("config is not UTF-8: {e}"))?;
    let origin = Path::new("fuzz.toml");
    let config = Config::from_toml_str(text, origin).map_err(|e| clear(e.to_string()))?;
    let again = toml::to_string(&config).unwrap_or_else(|e| panic!("a parsed config does not serialise: {e}"));
    let reparsed = Config::from_toml_str(&again, origin)
        .unwrap_or_else(|e| panic!("a re-serialised config does not parse: {e}\n{again}"));
    assert_eq!(reparsed, config, "config changed through TOML\n{again}");
    Ok(config)
}

fn text_parsers(line: &[u8]) {
    let name = OsStr::from_bytes(line);
    if media::is_candidate_name(name) {
        assert!(!line.starts_with(b".") && !line.is_empty(), "dotfile is a candidate");
    }
    let Ok(s) = std::str::from_utf8(line) else { return };
    if let Ok(t) = s.parse::<ClockTime>() {
        assert!(t.0 <= 24 * 60, "clock time {} minutes", t.0);
        let written = serde_json::to_string(&t).expect("clock time serialises");
        let back: ClockTime = serde_json::from_str(&written).expect("written clock time parses");
        assert_eq!(back, t, "clock time {s:?} written as {written}");
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let written = humantime::format_duration(d).to_string();
        let back = humantime::parse_duration(&written).unwrap_or_else(|e| panic!("{written:?} ({s:?}): {e}"));
        assert_eq!(back, d, "duration {s:?} written as {written:?}");
    }
    if let Some((sha, item)) = Store::parse_object_name(s) {
        assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "sha {sha:?}");
        let canonical = format!("objects/{}/{sha}-{item}.jpg", &sha[..2]);
        assert_eq!(Store::parse_object_name(&canonical), Some((sha, item)), "{canonical}");
    }
    if let Some(source) = Source::parse(s) {
        assert_eq!(source.as_str(), s);
    }
    // Event data as the ledger's typed reader takes it: whatever reads back as an event of a
    // kind writes back to text that reads as the same event.
    for kind in ["intake", "decided", "quarantined", "tagged", "released", "purge", "export", "rejected"] {
        if let Ok(e) = Event::from_stored(kind, s) {
            assert_eq!(e.kind(), kind);
            assert_eq!(Event::from_stored(kind, &e.data_text()).as_ref(), Ok(&e), "{kind}: {s:?}");
        }
    }
    let h = event_hash(1, 0, "fuzz", Some(1), s, "");
    assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "event hash {h:?}");
    assert_eq!(h, event_hash(1, 0, "fuzz", Some(1), s, ""), "event hash is not deterministic");
}
