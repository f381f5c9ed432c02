//! What a file in a camera folder is: which names are candidates at all, what the bytes
//! really are (sniffed, never trusted from the extension), and the EXIF facts the policy
//! uses (capture time, GPS, orientation).

use std::ffi::OsStr;
use std::io::Cursor;
use std::path::Path;

use serde::Serialize;

/// Extensions the agent looks at (lower case). Everything else in a camera folder is ignored.
pub const MEDIA_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "heic", "heif", "gif", "bmp", "tif", "tiff", "dng", "mp4", "3gp", "mov", "m4v",
    "mkv", "webm",
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

/// EXIF facts the policy and the ledger use. Every field is optional: broken EXIF is normal.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExifFacts {
    /// `DateTimeOriginal` (else `DateTime`) as written by the camera, local time, `YYYY-MM-DDTHH:MM:SS`.
    pub capture_time: Option<chrono::NaiveDateTime>,
    /// WGS84 latitude and longitude in degrees.
    pub gps: Option<(f64, f64)>,
    /// EXIF orientation 1..=8.
    pub orientation: Option<u16>,
}

impl ExifFacts {
    /// Parse what can be parsed; a file without EXIF or with garbage EXIF gives empty facts.
    pub fn parse(bytes: &[u8]) -> ExifFacts {
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
        let gps = match (
            coord(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, b'S'),
            coord(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, b'W'),
        ) {
            (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 && (lat, lon) != (0.0, 0.0) => {
                Some((lat, lon))
            }
            _ => None,
        };
        let orientation = field(exif::Tag::Orientation)
            .and_then(|f| f.value.get_uint(0))
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o));
        ExifFacts { capture_time, gps, orientation }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_names_follow_android_conventions() {
        for ok in ["IMG_20261123_101500.jpg", "PXL_1.JPG", "VID_2.mp4", "a.heic", "x.Png"] {
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
}
