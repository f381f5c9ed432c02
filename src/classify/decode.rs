//! From file bytes to the model's input: format sniffing, the fast JPEG paths, EXIF
//! orientation, centre crop, resize and normalisation.
//!
//! Decoding dominates the cost of a photo, so JPEGs take the cheapest path that is good
//! enough: the EXIF thumbnail (well under a millisecond) when it exists and matches the
//! photo's aspect, else a DCT-scaled decode (`jpeg-decoder` at 1/8, 1/4 or 1/2 so the short
//! side stays >= 224). The classifier asks for the scaled decode when a thumbnail's score is
//! near the threshold. Other formats go through the `image` crate with limits set, so
//! decompression bombs and absurd dimensions fail as an error for that file.
//!
//! The centre square is cropped and resized before orientation is applied: rotating or
//! flipping the 224x224 result is the same as cropping the rotated photo, and much cheaper.

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::ImageDecoder;

use super::{eighth, ClassifyError};
use crate::media::ExifFacts;

/// Model input side.
pub const SIDE: usize = 224;
/// Largest image we decode, in pixels (a 200 MP camera is the extreme); more is a bomb.
pub const MAX_PIXELS: u64 = 200_000_000;
/// Largest side accepted, in pixels.
pub const MAX_SIDE: u32 = 30_000;
/// Memory the `image` crate may allocate for one non-JPEG decode.
pub const MAX_ALLOC: u64 = 160 * 1024 * 1024;
/// A thumbnail smaller than this on its short side is not used.
pub const MIN_THUMB_SIDE: u32 = 96;

/// File kinds told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    /// Anything the `image` crate decodes here (PNG, WebP, GIF, BMP, TIFF).
    Other(image::ImageFormat),
    /// Recognised but not decodable here (HEIC/AVIF, videos, ...): name for the log line.
    Unsupported(&'static str),
}

/// Which decode produced the pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The JPEG's embedded EXIF thumbnail.
    Thumbnail,
    /// A DCT-scaled JPEG decode.
    Scaled,
    /// A full decode through the `image` crate (non-JPEG).
    Full,
}

/// A photo prepared for the model.
pub struct Prepared {
    /// `[3, 224, 224]`, `(pixel - 127) / 128`, RGB planes.
    pub input: Vec<f32>,
    pub source: Source,
    /// Whether a better decode (scaled JPEG) than this one is available.
    pub can_refine: bool,
    /// A thumbnail's short side in pixels (0 for other sources): how far its score is trusted.
    pub thumb_short: u32,
}

/// Recognise the format from magic bytes.
pub fn sniff(bytes: &[u8]) -> Format {
    if bytes.len() >= 3 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
        return Format::Jpeg;
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        let brand = &bytes[8..12];
        return Format::Unsupported(match brand {
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => "HEIC/HEIF",
            b"avif" | b"avis" => "AVIF",
            b"qt  " => "QuickTime video",
            b"3gp4" | b"3gp5" | b"3gp6" | b"3g2a" => "3GP video",
            _ => "MP4/ISO-BMFF video",
        });
    }
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Jpeg) => Format::Jpeg,
        Ok(
            f @ (image::ImageFormat::Png
            | image::ImageFormat::WebP
            | image::ImageFormat::Gif
            | image::ImageFormat::Bmp
            | image::ImageFormat::Tiff),
        ) => Format::Other(f),
        Ok(_) => Format::Unsupported("image format without a decoder here"),
        Err(_) if bytes.is_empty() => Format::Unsupported("empty file"),
        Err(_) => Format::Unsupported("unknown format"),
    }
}

/// EXIF facts of a JPEG: orientation (1..=8) and the thumbnail's byte range, if any.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JpegExif {
    pub orientation: u16,
    pub thumbnail: Option<std::ops::Range<usize>>,
}

/// Orientation and thumbnail location, from [`ExifFacts::parse`]'s tolerant reader; a
/// broken EXIF block gives orientation 1 and no thumbnail.
pub fn jpeg_exif(bytes: &[u8]) -> JpegExif {
    let facts = ExifFacts::parse(bytes);
    JpegExif { orientation: facts.orientation.unwrap_or(1), thumbnail: facts.thumbnail }
}

/// RGB8 pixels, their width and height, and the photo's full-size (width, height).
pub type Decoded = (Vec<u8>, u32, u32, (u32, u32));

/// Decode a JPEG with `jpeg-decoder`, DCT-scaled so the short side stays >= `min_short`
/// (not scaled at all when it is already that small).
/// Returns RGB8 pixels, width, height and the full-size dimensions.
pub fn decode_jpeg_scaled(bytes: &[u8], min_short: u32) -> Result<Decoded, ClassifyError> {
    let mut dec = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    dec.read_info().map_err(|e| ClassifyError::Decode(format!("jpeg header: {e}")))?;
    let info = dec.info().ok_or_else(|| ClassifyError::Decode("jpeg without frame header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_dims(w, h)?;
    check_jpeg_working_memory(&info)?;
    let short = w.min(h).max(1);
    let req_w = (u64::from(w) * u64::from(min_short)).div_ceil(u64::from(short)).min(65535) as u16;
    let req_h = (u64::from(h) * u64::from(min_short)).div_ceil(u64::from(short)).min(65535) as u16;
    let (ow, oh) = if short > min_short {
        let (ow, oh) = dec.scale(req_w, req_h).map_err(|e| ClassifyError::Decode(format!("jpeg scale: {e}")))?;
        (u32::from(ow), u32::from(oh))
    } else {
        (w, h)
    };
    dec.set_max_decoding_buffer_size(MAX_ALLOC as usize);
    let data = dec.decode().map_err(|e| ClassifyError::Decode(format!("jpeg: {e}")))?;
    let n = (ow as usize) * (oh as usize);
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => data,
        jpeg_decoder::PixelFormat::L8 => data.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::L16 => data.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        // jpeg-decoder undoes Adobe's inversion: C,M,Y,K are ink amounts (0 = no ink)
        jpeg_decoder::PixelFormat::CMYK32 => data
            .chunks_exact(4)
            .flat_map(|p| {
                let k = 255 - u32::from(p[3]);
                [p[0], p[1], p[2]].map(|c| (((255 - u32::from(c)) * k + 127) / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() < n * 3 {
        return Err(ClassifyError::Decode("jpeg: short pixel buffer".into()));
    }
    Ok((rgb, ow, oh, (w, h)))
}

/// The photo DCT-scaled so its short side stays >= `min_short`: the lean 1/8 decode
/// ([`eighth`], on up to `threads` cores) when 1/8 is the scale and the JPEG is baseline,
/// else [`decode_jpeg_scaled`].
pub fn decode_jpeg_fast(bytes: &[u8], min_short: u32, threads: usize) -> Result<Decoded, ClassifyError> {
    if let Some(size) = eighth::frame_size(bytes) {
        check_dims(size.width, size.height)?;
        if size.width.min(size.height).div_ceil(8) >= min_short {
            if let Some(e) = eighth::decode(bytes, threads) {
                return Ok((e.rgb, e.width, e.height, e.full));
            }
            tracing::debug!("lean 1/8 decode declined; using the full decoder");
        }
    }
    decode_jpeg_scaled(bytes, min_short)
}

/// `jpeg-decoder` keeps every DCT coefficient of a progressive JPEG (every sample of a
/// lossless one) for the whole frame at full size, 2 bytes each, whatever the DCT scale, and
/// checks its own buffer limit only after all scans: a 129-byte file declaring 29000x6800
/// made it allocate and touch 1.2 GB. Bound that memory by [`MAX_ALLOC`] before decoding
/// (about 26 MP for a colour progressive JPEG; sequential JPEGs decode row by row).
fn check_jpeg_working_memory(info: &jpeg_decoder::ImageInfo) -> Result<(), ClassifyError> {
    use jpeg_decoder::{CodingProcess, PixelFormat};
    if info.coding_process == CodingProcess::DctSequential {
        return Ok(());
    }
    let components: u64 = match info.pixel_format {
        PixelFormat::L8 | PixelFormat::L16 => 1,
        PixelFormat::RGB24 => 3,
        PixelFormat::CMYK32 => 4,
    };
    let need = u64::from(info.width) * u64::from(info.height) * components * 2;
    if need > MAX_ALLOC {
        return Err(ClassifyError::Decode(format!(
            "{:?} JPEG {}x{} needs {} MiB to decode, over the {} MiB limit: refusing a possible decompression bomb",
            info.coding_process,
            info.width,
            info.height,
            need >> 20,
            MAX_ALLOC >> 20
        )));
    }
    Ok(())
}

fn check_dims(w: u32, h: u32) -> Result<(), ClassifyError> {
    if w == 0 || h == 0 {
        return Err(ClassifyError::Decode(format!("zero dimension {w}x{h}")));
    }
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(ClassifyError::Decode(format!(
            "{w}x{h} exceeds the limits ({MAX_SIDE} px a side, {MAX_PIXELS} px): refusing a possible decompression bomb"
        )));
    }
    Ok(())
}

/// Decode any non-JPEG image with the `image` crate under limits; RGB8 plus orientation.
pub fn decode_other(bytes: &[u8], format: image::ImageFormat) -> Result<(Vec<u8>, u32, u32, u16), ClassifyError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| ClassifyError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_dims(w, h)?;
    // The conversions below hold a copy of the image as RGBA or RGB (8 bits) beside the
    // decoded one: keep that copy within MAX_ALLOC too. Without this a 150 KB grey PNG
    // declaring 12600x12600 (160 MB as decoded, just within the decoder's limit) grew to
    // 600 MB of memory. Non-JPEG images are screenshots and edits: about 42 MP is plenty.
    let rgba_bytes = u64::from(w) * u64::from(h) * 4;
    if rgba_bytes > MAX_ALLOC {
        return Err(ClassifyError::Decode(format!(
            "{w}x{h} needs {} MiB as RGBA, over the {} MiB limit: refusing a possible decompression bomb",
            rgba_bytes >> 20,
            MAX_ALLOC >> 20
        )));
    }
    let orientation = decoder.orientation().map(orientation_code).unwrap_or(1);
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| ClassifyError::Decode(e.to_string()))?;
    let rgb = match img {
        image::DynamicImage::ImageRgb8(b) => b,
        // transparent pixels over white, as a viewer shows them
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            let (w, h) = rgba.dimensions();
            let mut out = image::RgbImage::new(w, h);
            for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
                let a = u32::from(p[3]);
                *o = image::Rgb([0, 1, 2].map(|c| ((u32::from(p[c]) * a + 255 * (255 - a) + 127) / 255) as u8));
            }
            out
        }
        other => other.to_rgb8(),
    };
    let (w, h) = rgb.dimensions();
    Ok((rgb.into_raw(), w, h, orientation))
}

fn orientation_code(o: image::metadata::Orientation) -> u16 {
    use image::metadata::Orientation as O;
    match o {
        O::NoTransforms => 1,
        O::FlipHorizontal => 2,
        O::Rotate180 => 3,
        O::FlipVertical => 4,
        O::Rotate90FlipH => 5,
        O::Rotate90 => 6,
        O::Rotate270FlipH => 7,
        O::Rotate270 => 8,
    }
}

/// Centre square crop of `rgb` resized to 224, oriented, normalised into NCHW planes.
pub fn to_input(
    resizer: &mut Resizer,
    rgb: Vec<u8>,
    w: u32,
    h: u32,
    orientation: u16,
) -> Result<Vec<f32>, ClassifyError> {
    let side = w.min(h);
    let centre = Region {
        left: f64::from((w - side) / 2),
        top: f64::from((h - side) / 2),
        width: f64::from(side),
        height: f64::from(side),
    };
    to_input_region(resizer, &rgb, w, h, orientation, centre)
}

/// A rectangle of a decoded photo, in its stored (not yet oriented) pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Region {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// `region` of `rgb` resized to 224x224 (bilinear, as [`to_input`]), oriented, normalised
/// into NCHW planes. [`to_input`] is this with the centre square; `fotovakt head fit` takes
/// its augmented views (whole frame, random crops) through it too.
pub fn to_input_region(
    resizer: &mut Resizer,
    rgb: &[u8],
    w: u32,
    h: u32,
    orientation: u16,
    region: Region,
) -> Result<Vec<f32>, ClassifyError> {
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3).map_err(|e| ClassifyError::Decode(e.to_string()))?;
    let mut dst = Image::new(SIDE as u32, SIDE as u32, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
        region.left,
        region.top,
        region.width,
        region.height,
    );
    resizer.resize(&src, &mut dst, &opts).map_err(|e| ClassifyError::Decode(format!("resize: {e}")))?;
    Ok(normalise_oriented(dst.buffer(), orientation))
}

/// Write `(p - 127) / 128` planes, reading the 224x224 RGB square through the EXIF orientation.
fn normalise_oriented(sq: &[u8], orientation: u16) -> Vec<f32> {
    const N: usize = SIDE;
    let mut out = vec![0f32; 3 * N * N];
    let (r, rest) = out.split_at_mut(N * N);
    let (g, b) = rest.split_at_mut(N * N);
    for y in 0..N {
        for x in 0..N {
            // (x, y) in the displayed image -> (sx, sy) in the stored one
            let (sx, sy) = match orientation {
                2 => (N - 1 - x, y),
                3 => (N - 1 - x, N - 1 - y),
                4 => (x, N - 1 - y),
                5 => (y, x),
                6 => (y, N - 1 - x),
                7 => (N - 1 - y, N - 1 - x),
                8 => (N - 1 - y, x),
                _ => (x, y),
            };
            let s = (sy * N + sx) * 3;
            let d = y * N + x;
            r[d] = (f32::from(sq[s]) - 127.0) / 128.0;
            g[d] = (f32::from(sq[s + 1]) - 127.0) / 128.0;
            b[d] = (f32::from(sq[s + 2]) - 127.0) / 128.0;
        }
    }
    out
}

/// How [`prepare_with`] decodes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Take the EXIF thumbnail of a JPEG when usable.
    pub thumbnail: bool,
    /// Cores one photo's decode may use (1 or 2).
    pub threads: usize,
}

/// Prepare a photo. `allow_thumbnail`: take the EXIF thumbnail of a JPEG when usable.
pub fn prepare(resizer: &mut Resizer, bytes: &[u8], allow_thumbnail: bool) -> Result<Prepared, ClassifyError> {
    prepare_with(resizer, bytes, None, Options { thumbnail: allow_thumbnail, threads: 1 })
}

/// A photo decoded for the model: RGB8 pixels as stored, and the EXIF orientation to apply.
#[derive(Debug, Clone)]
pub struct Photo {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub orientation: u16,
}

/// Decode the photo itself, never its thumbnail, as the classifier does without a
/// thumbnail: a JPEG DCT-scaled (short side >= 224, the lean 1/8 decode where it applies)
/// on up to `threads` cores with the EXIF orientation of `exif`; any other format through
/// the `image` crate under limits, with its own orientation.
pub fn decode_photo(bytes: &[u8], exif: Option<&ExifFacts>, threads: usize) -> Result<Photo, ClassifyError> {
    match sniff(bytes) {
        Format::Unsupported(what) => Err(ClassifyError::Unsupported(what.to_string())),
        Format::Other(fmt) => {
            let (rgb, width, height, orientation) = decode_other(bytes, fmt)?;
            Ok(Photo { rgb, width, height, orientation })
        }
        Format::Jpeg => {
            let orientation = match exif {
                Some(f) => f.orientation.unwrap_or(1),
                None => ExifFacts::parse(bytes).orientation.unwrap_or(1),
            };
            let (rgb, width, height, _) = decode_jpeg_fast(bytes, SIDE as u32, threads.clamp(1, 2))?;
            Ok(Photo { rgb, width, height, orientation })
        }
    }
}

/// Prepare a photo, with the EXIF facts intake already parsed from these bytes (`None`:
/// parse them here).
pub fn prepare_with(
    resizer: &mut Resizer,
    bytes: &[u8],
    exif: Option<&ExifFacts>,
    opts: Options,
) -> Result<Prepared, ClassifyError> {
    let format = sniff(bytes);
    let parsed;
    let facts = match (exif, format) {
        (Some(f), _) => Some(f),
        (None, Format::Jpeg) => {
            parsed = ExifFacts::parse(bytes);
            Some(&parsed)
        }
        (None, _) => None,
    };
    if let (Format::Jpeg, true, Some(facts)) = (format, opts.thumbnail, facts) {
        let orientation = facts.orientation.unwrap_or(1);
        if let Some(range) = facts.thumbnail.clone().filter(|r| r.start < r.end && r.end <= bytes.len()) {
            match thumbnail(resizer, bytes, range, orientation) {
                Ok(Some((input, short))) => {
                    return Ok(Prepared { input, source: Source::Thumbnail, can_refine: true, thumb_short: short })
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "EXIF thumbnail unusable, decoding the photo")
                }
            }
        }
    }
    let photo = decode_photo(bytes, facts, opts.threads)?;
    let source = if format == Format::Jpeg { Source::Scaled } else { Source::Full };
    Ok(Prepared {
        input: to_input(resizer, photo.rgb, photo.width, photo.height, photo.orientation)?,
        source,
        can_refine: false,
        thumb_short: 0,
    })
}

/// The thumbnail as model input, if it is big enough and has the photo's aspect
/// (letter-boxed thumbnails would feed black bars to the model).
fn thumbnail(
    resizer: &mut Resizer,
    bytes: &[u8],
    range: std::ops::Range<usize>,
    orientation: u16,
) -> Result<Option<(Vec<f32>, u32)>, ClassifyError> {
    let mut main = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    main.read_info().map_err(|e| ClassifyError::Decode(format!("jpeg header: {e}")))?;
    let info = main.info().ok_or_else(|| ClassifyError::Decode("jpeg without frame header".into()))?;
    check_dims(u32::from(info.width), u32::from(info.height))?;
    let (rgb, tw, th, _) = decode_jpeg_scaled(&bytes[range], SIDE as u32)?;
    if tw.min(th) < MIN_THUMB_SIDE {
        return Ok(None);
    }
    let photo_aspect = f64::from(info.width) / f64::from(info.height);
    let thumb_aspect = f64::from(tw) / f64::from(th);
    if (photo_aspect / thumb_aspect - 1.0).abs() > 0.04 {
        return Ok(None);
    }
    to_input(resizer, rgb, tw, th, orientation).map(|input| Some((input, tw.min(th))))
}

/// Insert an EXIF block (orientation, optional JPEG thumbnail) after a JPEG's SOI marker,
/// the way a phone camera writes it. Used by tests and the benchmark to make camera-like
/// photos from generated images; returns `None` if `jpeg` is not a JPEG or the block
/// would not fit a segment.
pub fn with_exif(jpeg: &[u8], orientation: u16, thumbnail: Option<&[u8]>) -> Option<Vec<u8>> {
    if sniff(jpeg) != Format::Jpeg {
        return None;
    }
    let entry = |tag: u16, typ: u16, value: u32| -> Vec<u8> {
        let mut e = Vec::with_capacity(12);
        e.extend_from_slice(&tag.to_le_bytes());
        e.extend_from_slice(&typ.to_le_bytes());
        e.extend_from_slice(&1u32.to_le_bytes());
        e.extend_from_slice(&value.to_le_bytes());
        e
    };
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    // IFD0 at 8: one entry (2 + 12 + 4 bytes), IFD1 right after at 26
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&entry(0x0112, 3, u32::from(orientation)));
    let ifd1 = 26u32;
    tiff.extend_from_slice(&(if thumbnail.is_some() { ifd1 } else { 0 }).to_le_bytes());
    if let Some(t) = thumbnail {
        let data_at = ifd1 + 2 + 2 * 12 + 4;
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&entry(0x0201, 4, data_at));
        tiff.extend_from_slice(&entry(0x0202, 4, u32::try_from(t.len()).ok()?));
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(t);
    }
    let len = u16::try_from(2 + 6 + tiff.len()).ok()?;
    let mut out = Vec::with_capacity(jpeg.len() + tiff.len() + 10);
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&jpeg[2..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sample::progressive_jpeg as progressive;

    #[test]
    fn a_tiny_progressive_jpeg_declaring_a_huge_frame_is_refused_before_decoding() {
        // Found while fuzzing the intake path: 129 bytes made jpeg-decoder allocate and
        // touch 1.2 GB of coefficients and spend seconds on them.
        let bomb = progressive(29_000, 6_800);
        assert_eq!(bomb.len(), 129);
        let started = std::time::Instant::now();
        let err = decode_jpeg_scaled(&bomb, SIDE as u32).expect_err("refused");
        assert!(err.to_string().contains("decompression bomb"), "{err}");
        let err = prepare(&mut Resizer::new(), &bomb, true).err().expect("refused");
        assert!(err.to_string().contains("decompression bomb"), "{err}");
        assert!(started.elapsed().as_secs() < 2, "refused only after {:?}", started.elapsed());
        // within the limit a progressive JPEG still decodes
        let (rgb, w, h, full) = decode_jpeg_scaled(&progressive(2_000, 1_500), SIDE as u32).expect("decodes");
        assert_eq!((w, h, full), (500, 375, (2_000, 1_500)), "1/4 keeps the short side >= 224");
        assert_eq!(rgb.len(), 500 * 375 * 3);
        assert_eq!(prepare(&mut Resizer::new(), &progressive(640, 480), true).expect("decodes").source, Source::Scaled);
    }

    /// A grey PNG of `side` x `side` (zeros compress to almost nothing).
    fn grey_png(side: u32) -> Vec<u8> {
        use image::ImageEncoder;
        let mut out = Vec::new();
        let pixels = vec![0u8; (side * side) as usize];
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(&pixels, side, side, image::ExtendedColorType::L8)
            .expect("in-memory encode");
        out
    }

    #[test]
    fn a_small_png_whose_rgb_copy_would_exceed_the_budget_is_refused_before_decoding() {
        // Found while fuzzing the intake path: 154 KB of PNG (12600x12600 grey, 160 MB
        // decoded) took 600 MB through the conversion to RGB. Refused from the header now.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/regressions/intake/grey-png-12600x12600.png");
        let bomb = std::fs::read(path).expect("reproducer");
        assert!(bomb.len() < 200_000);
        let err = decode_other(&bomb, image::ImageFormat::Png).expect_err("refused");
        assert!(err.to_string().contains("decompression bomb"), "{err}");
        // about 42 MP (160 MiB / 4) is the largest non-JPEG image decoded; one within still is
        let ok = grey_png(6_000);
        let (rgb, w, h, _) = decode_other(&ok, image::ImageFormat::Png).expect("decodes");
        assert_eq!((w, h, rgb.len()), (6_000, 6_000, 6_000 * 6_000 * 3));
        let err = decode_other(&grey_png(6_500), image::ImageFormat::Png).expect_err("refused");
        assert!(err.to_string().contains("RGBA"), "{err}");
    }
}
