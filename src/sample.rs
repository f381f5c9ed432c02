//! Camera-like sample photos for the demo, the tests and the benchmarks: real baseline JPEGs
//! (encoded by the `image` crate) with a real EXIF block (capture time, GPS, orientation)
//! written by `kamadak-exif`, and Android-style writes (`.pending-…` file, then rename).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use exif::{Field, In, Rational, Tag, Value};

/// What to put in a sample photo.
#[derive(Debug, Clone)]
pub struct SamplePhoto {
    pub width: u32,
    pub height: u32,
    /// Varies the picture so every sample has its own hash.
    pub seed: u64,
    pub capture_time: Option<NaiveDateTime>,
    pub gps: Option<(f64, f64)>,
    pub orientation: Option<u16>,
    /// JPEG quality 1..=100.
    pub quality: u8,
}

impl Default for SamplePhoto {
    fn default() -> Self {
        SamplePhoto { width: 640, height: 480, seed: 1, capture_time: None, gps: None, orientation: None, quality: 90 }
    }
}

impl SamplePhoto {
    /// Encode as a JPEG file's bytes.
    pub fn jpeg(&self) -> Vec<u8> {
        let (w, h) = (self.width.max(1), self.height.max(1));
        let s = self.seed;
        let (a, b, c) = ((s % 7 + 1) as u32, (s / 7 % 5 + 1) as u32, (s / 35 % 3 + 1) as u32);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let cx = x as i64 - (w as i64 * ((s % 5) as i64 + 1) / 6);
            let cy = y as i64 - (h as i64 / 2);
            let ring = ((cx * cx + cy * cy) as f64).sqrt() as u32 / (8 + (s % 13) as u32);
            image::Rgb([
                ((x * a + s as u32) % 256) as u8,
                ((y * b + ring * 37) % 256) as u8,
                (((x ^ y) * c + (s >> 3) as u32) % 256) as u8,
            ])
        });
        let mut out = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, self.quality.clamp(1, 100));
        enc.encode_image(&img).expect("encoding an in-memory RGB image cannot fail");
        match self.exif_block() {
            Some(app1) => {
                let mut with = Vec::with_capacity(out.len() + app1.len());
                with.extend_from_slice(&out[..2]);
                with.extend_from_slice(&app1);
                with.extend_from_slice(&out[2..]);
                with
            }
            None => out,
        }
    }

    /// The APP1 segment with the EXIF fields, if any are set.
    fn exif_block(&self) -> Option<Vec<u8>> {
        let mut fields = Vec::new();
        if let Some(t) = self.capture_time {
            let s = t.format("%Y:%m:%d %H:%M:%S").to_string().into_bytes();
            fields.push(Field {
                tag: Tag::DateTimeOriginal,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![s.clone()]),
            });
            fields.push(Field { tag: Tag::DateTime, ifd_num: In::PRIMARY, value: Value::Ascii(vec![s]) });
        }
        if let Some(o) = self.orientation {
            fields.push(Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![o]) });
        }
        if let Some((lat, lon)) = self.gps {
            let dms = |v: f64| {
                let v = v.abs();
                let d = v.floor();
                let m = ((v - d) * 60.0).floor();
                let sec = (v - d - m / 60.0) * 3600.0;
                vec![
                    Rational { num: d as u32, denom: 1 },
                    Rational { num: m as u32, denom: 1 },
                    Rational { num: (sec * 10_000.0).round() as u32, denom: 10_000 },
                ]
            };
            let r = |s: &str| Value::Ascii(vec![s.as_bytes().to_vec()]);
            fields.push(Field {
                tag: Tag::GPSLatitudeRef,
                ifd_num: In::PRIMARY,
                value: r(if lat < 0.0 { "S" } else { "N" }),
            });
            fields.push(Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lat)) });
            fields.push(Field {
                tag: Tag::GPSLongitudeRef,
                ifd_num: In::PRIMARY,
                value: r(if lon < 0.0 { "W" } else { "E" }),
            });
            fields.push(Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: Value::Rational(dms(lon)) });
        }
        if fields.is_empty() {
            return None;
        }
        let mut w = exif::experimental::Writer::new();
        for f in &fields {
            w.push_field(f);
        }
        let mut tiff = Cursor::new(Vec::new());
        w.write(&mut tiff, false).expect("writing EXIF to memory cannot fail");
        let tiff = tiff.into_inner();
        let len = u16::try_from(2 + 6 + tiff.len()).expect("EXIF block fits in one segment");
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&len.to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        Some(app1)
    }
}

/// Write `bytes` into `dir/name` the way Android's MediaStore does: into
/// `.pending-<expiry>-name` first, fsync, then rename to the final name.
pub fn write_like_android(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let expiry = crate::ledger::now_ms() / 1000 + 7 * 86400;
    let pending = dir.join(format!(".pending-{expiry}-{name}"));
    let mut f = std::fs::File::create(&pending)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    let dst = dir.join(name);
    std::fs::rename(&pending, &dst)?;
    Ok(dst)
}

/// A progressive JPEG (SOF2) declaring `w`x`h` with three components and one DC scan whose
/// entropy data is a single byte: a decoder pads the rest with zero bits, so a file of ~150
/// bytes makes it touch every coefficient of the declared frame (a decompression-bomb shape
/// for the decode limits' tests and the fuzz seeds).
pub fn progressive_jpeg(w: u16, h: u16) -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00];
    j.extend([1u8; 64]);
    j.extend([0xFF, 0xC2, 0x00, 0x11, 0x08]);
    j.extend(h.to_be_bytes());
    j.extend(w.to_be_bytes());
    j.extend([3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    // DC table 0: one code of length 1 for category 0.
    j.extend([0xFF, 0xC4, 0x00, 0x14, 0x00, 1]);
    j.extend([0u8; 16]);
    j.extend([0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 0, 0, 0x00, 0xFF, 0xD9]);
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{ExifFacts, MediaKind};

    #[test]
    fn samples_are_real_jpegs_with_readable_exif() {
        let t = NaiveDateTime::parse_from_str("2026-11-23 09:15:00", "%Y-%m-%d %H:%M:%S").expect("time");
        let p = SamplePhoto {
            capture_time: Some(t),
            gps: Some((69.6617, -30.1271)),
            orientation: Some(6),
            ..Default::default()
        };
        let bytes = p.jpeg();
        assert_eq!(MediaKind::sniff(&bytes), MediaKind::Jpeg);
        let img = image::load_from_memory(&bytes).expect("decodes");
        assert_eq!((img.width(), img.height()), (640, 480));
        let facts = ExifFacts::parse(&bytes);
        assert_eq!(facts.capture_time, Some(t));
        assert_eq!(facts.orientation, Some(6));
        let (lat, lon) = facts.gps.expect("gps");
        assert!((lat - 69.6617).abs() < 1e-5 && (lon + 30.1271).abs() < 1e-5, "{lat} {lon}");
        assert_ne!(SamplePhoto { seed: 2, ..p.clone() }.jpeg(), bytes, "seeds differ");
    }
}
