//! What a file in a camera folder is: which names are candidates at all, what the bytes
//! really are (sniffed, never trusted from the extension), and the EXIF facts the policy
//! uses (capture time, GPS, orientation).

use std::ffi::OsStr;
use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::quarantine::fsops::{self, FileId, OpenError};

/// Extensions the agent looks at (lower case). Everything else in a camera folder is ignored.
pub const MEDIA_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "heic", "heif", "avif", "gif", "bmp", "tif", "tiff", "dng", "mp4", "3gp", "mov",
    "m4v", "mkv", "webm",
];

/// Is this file name something the agent should consider?
///
/// Android's MediaStore and camera apps write `.pending-<expiry>-NAME` first and rename it
/// when done; deleted items become `.trashed-<expiry>-NAME`. Both, every other dotfile and
/// every non-media extension are ignored: the finished file arrives by a rename.
pub fn is_candidate_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    if bytes.is_empty() || bytes[0] == b'.' || bytes.ends_with(b"~") {
        return false;
    }
    match Path::new(name).extension() {
        Some(ext) => {
            let ext = ext.to_string_lossy().to_ascii_lowercase();
            MEDIA_EXTENSIONS.contains(&ext.as_str())
        }
        None => false,
    }
}

/// The kind of media, from the leading bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
    Heif,
    Video,
    /// Bytes that match no known media format (an empty file, a text file named `.jpg`).
    Unknown,
}

impl MediaKind {
    /// Sniff the first bytes of a file.
    pub fn sniff(head: &[u8]) -> MediaKind {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => MediaKind::Jpeg,
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => MediaKind::Png,
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => MediaKind::Webp,
            [b'G', b'I', b'F', b'8', ..] => MediaKind::Gif,
            [b'B', b'M', ..] => MediaKind::Bmp,
            [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => MediaKind::Tiff,
            [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..] if brand.len() >= 4 => match &brand[..4] {
                b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" | b"avif" => MediaKind::Heif,
                _ => MediaKind::Video,
            },
            [0x1A, 0x45, 0xDF, 0xA3, ..] => MediaKind::Video, // Matroska / WebM
            _ => MediaKind::Unknown,
        }
    }

    /// A still image the `image` crate can decode for the classifier.
    pub fn is_decodable_image(self) -> bool {
        matches!(
            self,
            MediaKind::Jpeg | MediaKind::Png | MediaKind::Webp | MediaKind::Gif | MediaKind::Bmp | MediaKind::Tiff
        )
    }

    /// Short lower-case name, as stored in the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Jpeg => "jpeg",
            MediaKind::Png => "png",
            MediaKind::Webp => "webp",
            MediaKind::Gif => "gif",
            MediaKind::Bmp => "bmp",
            MediaKind::Tiff => "tiff",
            MediaKind::Heif => "heif",
            MediaKind::Video => "video",
            MediaKind::Unknown => "unknown",
        }
    }
}

/// EXIF facts the policy, the ledger and the classifier use. Every field is optional:
/// broken EXIF is normal.
///
/// Parsed once per photo by intake and handed to the classifier, which takes the thumbnail
/// and orientation from here rather than reading the EXIF block again.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExifFacts {
    /// `DateTimeOriginal` (else `DateTime`) as written by the camera, local time, `YYYY-MM-DDTHH:MM:SS`.
    pub capture_time: Option<chrono::NaiveDateTime>,
    /// WGS84 latitude and longitude in degrees.
    pub gps: Option<(f64, f64)>,
    /// EXIF orientation 1..=8.
    pub orientation: Option<u16>,
    /// Byte range, in the file, of the JPEG thumbnail IFD1 points at (a JPEG's only; within
    /// the file and the EXIF segment, starting with a JPEG SOI marker).
    #[serde(skip)]
    pub thumbnail: Option<Range<usize>>,
}

impl ExifFacts {
    /// Parse what can be parsed; a file without EXIF or with garbage EXIF gives empty facts.
    ///
    /// A JPEG's EXIF goes through [`TiffReader`], which takes every entry it can reach: phones
    /// and tools write blocks that strict readers refuse whole (an Exif IFD with a next-IFD
    /// link (piexif), an IFD count running past the segment, IFDs linked in a loop), and
    /// then the thumbnail would be lost with the rest. Other containers (TIFF, PNG, WebP,
    /// HEIF) go through `kamadak-exif`.
    pub fn parse(bytes: &[u8]) -> ExifFacts {
        if bytes.starts_with(&[0xFF, 0xD8]) {
            return match jpeg_exif_segment(bytes) {
                Some(seg) => Self::from_tiff(bytes, seg),
                None => ExifFacts::default(),
            };
        }
        Self::parse_container(bytes)
    }

    /// The facts of the TIFF structure at `bytes[seg]` (a JPEG's APP1 payload after `Exif\0\0`).
    fn from_tiff(bytes: &[u8], seg: Range<usize>) -> ExifFacts {
        let Some(t) = TiffReader::new(&bytes[seg.clone()]) else {
            return ExifFacts::default();
        };
        let mut seen = Vec::new();
        let ifd0 = t.ifd(t.first_ifd(), &mut seen);
        let find = |ifd: &[Entry], tag: u16| ifd.iter().find(|e| e.tag == tag).copied();
        let sub = |tag: u16, seen: &mut Vec<usize>| -> Vec<Entry> {
            find(&ifd0, tag).and_then(|e| t.uint(e, 0)).map(|o| t.ifd(o as usize, seen)).unwrap_or_default()
        };
        let exif_ifd = sub(0x8769, &mut seen);
        let gps_ifd = sub(0x8825, &mut seen);
        let ifd1 = t.next_ifd(t.first_ifd()).map(|o| t.ifd(o, &mut seen)).unwrap_or_default();

        let capture_time = find(&exif_ifd, 0x9003)
            .and_then(|e| t.ascii(e))
            .and_then(|a| exif::DateTime::from_ascii(a).ok())
            .or_else(|| find(&ifd0, 0x0132).and_then(|e| t.ascii(e)).and_then(|a| exif::DateTime::from_ascii(a).ok()))
            .and_then(|d| {
                chrono::NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?.and_hms_opt(
                    d.hour.into(),
                    d.minute.into(),
                    d.second.into(),
                )
            });
        let coord = |value_tag: u16, ref_tag: u16, negative: u8| -> Option<f64> {
            let e = find(&gps_ifd, value_tag)?;
            let part = |i| t.rational(e, i);
            let deg = match (part(0), part(1), part(2)) {
                (Some(d), Some(m), Some(s)) => d + m / 60.0 + s / 3600.0,
                (Some(d), _, _) => d,
                _ => return None,
            };
            let sign = match find(&gps_ifd, ref_tag).and_then(|e| t.ascii(e)).and_then(|a| a.first()) {
                Some(&c) if c == negative => -1.0,
                _ => 1.0,
            };
            deg.is_finite().then_some(sign * deg)
        };
        let gps = valid_gps(coord(2, 1, b'S'), coord(4, 3, b'W'));
        let orientation = find(&ifd0, 0x0112)
            .and_then(|e| t.uint(e, 0))
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o));
        let thumbnail = match (find(&ifd1, 0x0201).and_then(|e| t.uint(e, 0)), find(&ifd1, 0x0202)) {
            (Some(off), Some(len)) => t.uint(len, 0).and_then(|len| {
                let start = seg.start.checked_add(off as usize)?;
                let end = start.checked_add(len as usize)?.min(seg.end);
                (start + 2 <= end && bytes[start..start + 2] == [0xFF, 0xD8]).then_some(start..end)
            }),
            _ => None,
        };
        ExifFacts { capture_time, gps, orientation, thumbnail }
    }

    fn parse_container(bytes: &[u8]) -> ExifFacts {
        let mut reader = exif::Reader::new();
        reader.continue_on_error(true);
        let parsed = match reader.read_from_container(&mut Cursor::new(bytes)) {
            Ok(e) => e,
            Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
            Err(_) => return ExifFacts::default(),
        };
        let field = |tag| parsed.get_field(tag, exif::In::PRIMARY);
        let capture_time = field(exif::Tag::DateTimeOriginal)
            .or_else(|| field(exif::Tag::DateTime))
            .and_then(|f| match &f.value {
                exif::Value::Ascii(v) => v.first().and_then(|b| exif::DateTime::from_ascii(b).ok()),
                _ => None,
            })
            .and_then(|d| {
                chrono::NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())?.and_hms_opt(
                    d.hour.into(),
                    d.minute.into(),
                    d.second.into(),
                )
            });
        let coord = |value_tag, ref_tag, negative: u8| -> Option<f64> {
            let f = field(value_tag)?;
            let deg = match &f.value {
                exif::Value::Rational(r) if r.len() >= 3 => {
                    r[0].to_f64() + r[1].to_f64() / 60.0 + r[2].to_f64() / 3600.0
                }
                exif::Value::Rational(r) if !r.is_empty() => r[0].to_f64(),
                _ => return None,
            };
            let sign = match field(ref_tag).map(|f| &f.value) {
                Some(exif::Value::Ascii(v)) if v.first().and_then(|s| s.first()) == Some(&negative) => -1.0,
                _ => 1.0,
            };
            deg.is_finite().then_some(sign * deg)
        };
        let gps = valid_gps(
            coord(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, b'S'),
            coord(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, b'W'),
        );
        let orientation = field(exif::Tag::Orientation)
            .and_then(|f| f.value.get_uint(0))
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o));
        ExifFacts { capture_time, gps, orientation, thumbnail: None }
    }
}

/// The camera's own make and model (EXIF `Make`, `Model` of the primary image), as written,
/// trimmed; what `fotovakt import` records of a dedicated camera's files.
pub fn camera_make_model(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parsed = match reader.read_from_container(&mut Cursor::new(bytes)) {
        Ok(e) => e,
        Err(exif::Error::PartialResult(partial)) => partial.into_inner().0,
        Err(_) => return (None, None),
    };
    let text = |tag| match parsed.get_field(tag, exif::In::PRIMARY).map(|f| &f.value) {
        Some(exif::Value::Ascii(v)) => v
            .first()
            .map(|b| String::from_utf8_lossy(b).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string())
            .filter(|s| !s.is_empty()),
        _ => None,
    };
    (text(exif::Tag::Make), text(exif::Tag::Model))
}

fn valid_gps(lat: Option<f64>, lon: Option<f64>) -> Option<(f64, f64)> {
    match (lat, lon) {
        (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 && (lat, lon) != (0.0, 0.0) => {
            Some((lat, lon))
        }
        _ => None,
    }
}

/// The TIFF payload of a JPEG's EXIF APP1 segment (after `Exif\0\0`), as a range of `bytes`.
pub fn jpeg_exif_segment(bytes: &[u8]) -> Option<Range<usize>> {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        // markers without a length
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // start of scan: no EXIF after it
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let body = i + 4..(i + 2 + len).min(bytes.len());
        // "Exif\0\0"; a few writers put another byte after the NUL
        if marker == 0xE1 && len >= 8 && bytes.get(body.start..body.start + 5) == Some(b"Exif\0") {
            return Some(body.start + 6..body.end);
        }
        i += 2 + len;
    }
    None
}

/// One IFD entry, as read (the value is decoded on demand).
#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    /// Offset in the TIFF data of the entry's 4-byte value field.
    at: usize,
}

/// A forgiving reader of a TIFF structure (an EXIF block): every entry that lies within the
/// data is taken, whatever else is wrong; IFDs are read at most once (loops end).
struct TiffReader<'a> {
    data: &'a [u8],
    le: bool,
}

/// More entries than this in one IFD is garbage (real ones have tens).
const MAX_IFD_ENTRIES: usize = 1000;

impl<'a> TiffReader<'a> {
    fn new(data: &'a [u8]) -> Option<TiffReader<'a>> {
        let le = match data.get(..4)? {
            [b'I', b'I', 42, 0] => true,
            [b'M', b'M', 0, 42] => false,
            _ => return None,
        };
        Some(TiffReader { data, le })
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    }

    fn first_ifd(&self) -> usize {
        self.u32_at(4).map_or(usize::MAX, |o| o as usize)
    }

    /// The entries of the IFD at `off` that lie within the data; empty if it was seen before.
    fn ifd(&self, off: usize, seen: &mut Vec<usize>) -> Vec<Entry> {
        if off < 8 || seen.contains(&off) || seen.len() > 16 {
            return Vec::new();
        }
        seen.push(off);
        let Some(count) = self.u16_at(off) else { return Vec::new() };
        let fits = self.data.len().saturating_sub(off + 2) / 12;
        (0..usize::from(count).min(fits).min(MAX_IFD_ENTRIES))
            .filter_map(|i| {
                let e = off + 2 + 12 * i;
                Some(Entry { tag: self.u16_at(e)?, typ: self.u16_at(e + 2)?, count: self.u32_at(e + 4)?, at: e + 8 })
            })
            .collect()
    }

    /// The next-IFD link after the IFD at `off`, if there is one within the data.
    fn next_ifd(&self, off: usize) -> Option<usize> {
        let count = usize::from(self.u16_at(off)?);
        let next = self.u32_at(off + 2 + 12 * count)? as usize;
        (next >= 8 && next < self.data.len()).then_some(next)
    }

    /// Where the value of `e` lies: in the entry if it fits 4 bytes, else at its offset.
    fn value_at(&self, e: Entry, unit: usize) -> Option<(usize, usize)> {
        let size = unit.checked_mul(e.count as usize)?;
        let at = if size <= 4 { e.at } else { self.u32_at(e.at)? as usize };
        (at.checked_add(size)? <= self.data.len()).then_some((at, size))
    }

    /// The `i`th value of a BYTE, SHORT or LONG entry.
    fn uint(&self, e: Entry, i: usize) -> Option<u32> {
        let unit = match e.typ {
            1 | 7 => 1,
            3 => 2,
            4 | 9 => 4,
            _ => return None,
        };
        if i >= e.count as usize {
            return None;
        }
        let (at, _) = self.value_at(e, unit)?;
        match unit {
            1 => self.data.get(at + i).map(|&b| u32::from(b)),
            2 => self.u16_at(at + 2 * i).map(u32::from),
            _ => self.u32_at(at + 4 * i),
        }
    }

    /// The `i`th value of a RATIONAL entry.
    fn rational(&self, e: Entry, i: usize) -> Option<f64> {
        if e.typ != 5 || i >= e.count as usize {
            return None;
        }
        let (at, _) = self.value_at(e, 8)?;
        let (n, d) = (self.u32_at(at + 8 * i)?, self.u32_at(at + 8 * i + 4)?);
        (d != 0).then(|| f64::from(n) / f64::from(d))
    }

    /// An ASCII entry's bytes, up to the first NUL.
    fn ascii(&self, e: Entry) -> Option<&'a [u8]> {
        if e.typ != 2 {
            return None;
        }
        let (at, size) = self.value_at(e, 1)?;
        let s = &self.data[at..at + size];
        Some(s.split(|&b| b == 0).next().unwrap_or(s))
    }
}

/// A file read the way the agent reads a photo: opened without following symlinks, hashed
/// first, then sniffed and its EXIF parsed from exactly the bytes that were hashed. Intake
/// and `fotovakt classify` both read files through [`inspect`] / [`inspect_open`].
#[derive(Debug, Clone)]
pub struct Inspected {
    /// SHA-256 of the bytes read, lower-case hex.
    pub sha256: String,
    /// How many bytes were read (and hashed).
    pub size: u64,
    /// The whole file, when it is no larger than the `keep` limit given: the classifier
    /// reads these, so it judges exactly what was hashed.
    pub bytes: Option<Vec<u8>>,
    /// What the bytes are, sniffed from their start (never from the name).
    pub kind: MediaKind,
    /// EXIF facts of a still image whose bytes were kept; empty otherwise.
    pub exif: ExifFacts,
}

/// Why [`inspect`] could not read a file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// It could not be opened as a regular file (symlink, FIFO, gone, permission, …).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading it failed part-way.
    #[error("unreadable: {0}")]
    Read(#[source] std::io::Error),
    /// Its size or modification time changed while it was hashed: still being written, or
    /// replaced. Look again later.
    #[error("still being written")]
    Changed,
}

/// Open `path` as intake does (no symlinks, identity from the descriptor) and [`inspect_open`]
/// it, keeping the bytes of a file up to `keep` bytes.
pub fn inspect(path: &Path, keep: u64) -> Result<Inspected, InspectError> {
    let (file, id) = fsops::open_regular(path)?;
    inspect_open(&file, &id, keep)
}

/// Hash an already opened file (`id` taken when it was opened), check that it did not change
/// meanwhile, then sniff what it is and parse its EXIF. The bytes are kept when the file is no
/// larger than `keep`.
pub fn inspect_open(file: &std::fs::File, id: &FileId, keep: u64) -> Result<Inspected, InspectError> {
    let (sha256, size, bytes) = fsops::hash_fd(file, Some(keep)).map_err(InspectError::Read)?;
    let now = file.metadata().map(|m| FileId::of(&m));
    if size != id.size || !matches!(&now, Ok(n) if n.same_content_as(id)) {
        return Err(InspectError::Changed);
    }
    let head = match &bytes {
        Some(b) => b[..b.len().min(64)].to_vec(),
        None => fsops::read_head(file, 64).unwrap_or_default(),
    };
    let kind = MediaKind::sniff(&head);
    let exif = match (&bytes, kind) {
        (Some(b), MediaKind::Jpeg | MediaKind::Tiff | MediaKind::Png | MediaKind::Webp | MediaKind::Heif) => {
            ExifFacts::parse(b)
        }
        _ => ExifFacts::default(),
    };
    Ok(Inspected { sha256, size, bytes, kind, exif })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_names_follow_android_conventions() {
        for ok in ["IMG_20261123_101500.jpg", "PXL_1.JPG", "VID_2.mp4", "a.heic", "x.Png", "PXL_3.avif", "b.AVIF"] {
            assert!(is_candidate_name(OsStr::new(ok)), "{ok}");
        }
        for no in [
            ".pending-1732380000-IMG_1.jpg",
            ".trashed-1732380000-IMG_1.jpg",
            ".thumbnails",
            ".nomedia",
            "IMG_1.jpg~",
            "notes.txt",
            "IMG_1",
            "",
        ] {
            assert!(!is_candidate_name(OsStr::new(no)), "{no}");
        }
    }

    #[test]
    fn sniffing_ignores_the_extension() {
        assert_eq!(MediaKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE1]), MediaKind::Jpeg);
        assert_eq!(MediaKind::sniff(b"\x89PNG\r\n\x1a\n...."), MediaKind::Png);
        assert_eq!(MediaKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), MediaKind::Webp);
        assert_eq!(MediaKind::sniff(b"\0\0\0\x18ftypheic\0\0"), MediaKind::Heif);
        assert_eq!(MediaKind::sniff(b"\0\0\0\x1cftypavif\0\0"), MediaKind::Heif);
        assert_eq!(MediaKind::sniff(b"\0\0\0\x18ftypisom\0\0"), MediaKind::Video);
        assert_eq!(MediaKind::sniff(b"\0\0\0\x14ftyp3gp4\0\0"), MediaKind::Video);
        assert_eq!(MediaKind::sniff(b""), MediaKind::Unknown);
        assert_eq!(MediaKind::sniff(b"root:x:0:0"), MediaKind::Unknown);
    }

    #[test]
    fn garbage_exif_gives_empty_facts() {
        assert_eq!(ExifFacts::parse(b""), ExifFacts::default());
        assert_eq!(ExifFacts::parse(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x02]), ExifFacts::default());
    }
    #[test]
    fn inspect_reads_hash_kind_and_exif_from_the_same_bytes() {
        use sha2::Digest;
        let dir = tempfile::tempdir().expect("tempdir");
        let photo = crate::sample::SamplePhoto {
            capture_time: chrono::NaiveDateTime::parse_from_str("2026-11-23 10:01", "%Y-%m-%d %H:%M").ok(),
            ..Default::default()
        }
        .jpeg();
        let path = dir.path().join("IMG_1.jpg");
        std::fs::write(&path, &photo).expect("write");
        let got = inspect(&path, 1 << 20).expect("inspect");
        assert_eq!(got.sha256, hex::encode(sha2::Sha256::digest(&photo)));
        assert_eq!(got.size, photo.len() as u64);
        assert_eq!(got.bytes.as_deref(), Some(&photo[..]));
        assert_eq!(got.kind, MediaKind::Jpeg);
        assert_eq!(got.exif.capture_time.map(|t| t.to_string()).as_deref(), Some("2026-11-23 10:01:00"));

        // Over the limit: hashed and sniffed, bytes not kept, no EXIF.
        let big = inspect(&path, 10).expect("inspect");
        assert_eq!(
            (big.sha256, big.kind, big.bytes, big.exif),
            (got.sha256, MediaKind::Jpeg, None, ExifFacts::default())
        );

        let link = dir.path().join("IMG_2.jpg");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        assert!(matches!(inspect(&link, 1 << 20), Err(InspectError::Open(OpenError::Symlink))));
        assert!(matches!(inspect(&dir.path().join("gone.jpg"), 1), Err(InspectError::Open(OpenError::Vanished))));
    }
}
