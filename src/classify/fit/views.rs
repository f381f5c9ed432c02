//! The views of one training photo, all through the classifier's own decode
//! ([`decode::decode_photo`], [`decode::to_input_region`]): view 0 is exactly what the agent
//! feeds the model for this photo without a thumbnail; the others teach the head the paths and
//! looks the agent meets on a phone (the order and kinds of `models/train_head.py`):
//!
//! | view | what |
//! | --- | --- |
//! | 0 | the agent's input: centre square of the DCT-scaled decode, EXIF orientation applied |
//! | 1 | view 0 mirrored |
//! | 2 | the whole frame squashed to 224x224 |
//! | 3 | an EXIF-thumbnail-like copy: 160 px long side, JPEG quality 75, decoded as the agent decodes thumbnails |
//! | 4 | view 0 in grey |
//! | 5.. | random crops (35-100 % of the square's area), half of them mirrored, 30 % recompressed as JPEG at quality 40-89 |
//!
//! The random views are drawn from a generator seeded by the run's seed and the photo's
//! SHA-256, so a photo gets the same views whatever folder or order it comes in.

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::classify::decode::{self, Photo, Region, SIDE};
use crate::classify::ClassifyError;
use crate::media::ExifFacts;

/// Most views a photo gets.
pub const MAX_VIEWS: usize = 9;

/// `count` model inputs (1..=[`MAX_VIEWS`]) for one photo; see the module docs.
pub fn views(
    resizer: &mut Resizer,
    bytes: &[u8],
    exif: &ExifFacts,
    count: usize,
    rng: &mut fastrand::Rng,
) -> Result<Vec<Vec<f32>>, ClassifyError> {
    let photo = decode::decode_photo(bytes, Some(exif), 2)?;
    let (w, h, o) = (photo.width, photo.height, photo.orientation);
    let side = w.min(h);
    let centre = Region {
        left: f64::from((w - side) / 2),
        top: f64::from((h - side) / 2),
        width: f64::from(side),
        height: f64::from(side),
    };
    let first = decode::to_input_region(resizer, &photo.rgb, w, h, o, centre)?;
    let mut out = Vec::with_capacity(count.clamp(1, MAX_VIEWS));
    for k in 1..count.clamp(1, MAX_VIEWS) {
        let view = match k {
            1 => mirrored(&first),
            2 => {
                let whole = Region { left: 0.0, top: 0.0, width: f64::from(w), height: f64::from(h) };
                decode::to_input_region(resizer, &photo.rgb, w, h, o, whole)?
            }
            3 => thumbnail_like(resizer, &photo)?,
            4 => grey(&first),
            _ => random_crop(resizer, &photo, rng)?,
        };
        out.push(view);
    }
    out.insert(0, first);
    Ok(out)
}

/// An input mirrored left to right (each plane's rows reversed).
fn mirrored(input: &[f32]) -> Vec<f32> {
    let mut out = input.to_vec();
    out.chunks_exact_mut(SIDE).for_each(<[f32]>::reverse);
    out
}

/// An input in grey: Pillow's `L` weights (299/587/114 per mille) on the 0..255 values.
fn grey(input: &[f32]) -> Vec<f32> {
    let n = SIDE * SIDE;
    let (r, rest) = input.split_at(n);
    let (g, b) = rest.split_at(n);
    let value = |v: f32| v * 128.0 + 127.0;
    let luma: Vec<f32> = (0..n)
        .map(|i| {
            let y = (value(r[i]) * 299.0 + value(g[i]) * 587.0 + value(b[i]) * 114.0) / 1000.0;
            (y.round().clamp(0.0, 255.0) - 127.0) / 128.0
        })
        .collect();
    [luma.as_slice(), luma.as_slice(), luma.as_slice()].concat()
}

/// The whole frame at 160 px on its long side, JPEG quality 75 (a camera's EXIF thumbnail),
/// decoded and cropped as the agent takes a thumbnail.
fn thumbnail_like(resizer: &mut Resizer, photo: &Photo) -> Result<Vec<f32>, ClassifyError> {
    let (w, h) = (photo.width, photo.height);
    let scale = 160.0 / f64::from(w.max(h));
    let (tw, th) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    let small = resize(resizer, &photo.rgb, w, h, tw, th)?;
    let jpeg = encode_jpeg(&small, tw, th, 75)?;
    let (rgb, dw, dh, _) = decode::decode_jpeg_scaled(&jpeg, SIDE as u32)?;
    decode::to_input(resizer, rgb, dw, dh, photo.orientation)
}

/// A random square crop of 35-100 % of the short side's square (area), maybe mirrored,
/// maybe recompressed as JPEG.
fn random_crop(resizer: &mut Resizer, photo: &Photo, rng: &mut fastrand::Rng) -> Result<Vec<f32>, ClassifyError> {
    let (w, h) = (photo.width, photo.height);
    let area = 0.35 + 0.65 * rng.f64();
    let s = ((f64::from(w.min(h)) * area.sqrt()) as u32).max(1);
    let left = rng.u32(0..=w - s);
    let top = rng.u32(0..=h - s);
    let region = Region { left: f64::from(left), top: f64::from(top), width: f64::from(s), height: f64::from(s) };
    let mut input = decode::to_input_region(resizer, &photo.rgb, w, h, photo.orientation, region)?;
    if rng.f64() < 0.5 {
        input = mirrored(&input);
    }
    if rng.f64() < 0.3 {
        let quality = rng.u8(40..90);
        let rgb = to_rgb(&input);
        let jpeg = encode_jpeg(&rgb, SIDE as u32, SIDE as u32, quality)?;
        let (back, bw, bh, _) = decode::decode_jpeg_scaled(&jpeg, SIDE as u32)?;
        input = decode::to_input(resizer, back, bw, bh, 1)?;
    }
    Ok(input)
}

/// An input's planes back to interleaved RGB8.
fn to_rgb(input: &[f32]) -> Vec<u8> {
    let n = SIDE * SIDE;
    (0..n).flat_map(|i| [0, 1, 2].map(|c| (input[c * n + i] * 128.0 + 127.0).round().clamp(0.0, 255.0) as u8)).collect()
}

fn resize(resizer: &mut Resizer, rgb: &[u8], w: u32, h: u32, tw: u32, th: u32) -> Result<Vec<u8>, ClassifyError> {
    let src = ImageRef::new(w, h, rgb, PixelType::U8x3).map_err(|e| ClassifyError::Decode(e.to_string()))?;
    let mut dst = Image::new(tw, th, PixelType::U8x3);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer.resize(&src, &mut dst, &opts).map_err(|e| ClassifyError::Decode(format!("resize: {e}")))?;
    Ok(dst.into_vec())
}

fn encode_jpeg(rgb: &[u8], w: u32, h: u32, quality: u8) -> Result<Vec<u8>, ClassifyError> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(rgb, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| ClassifyError::Decode(format!("jpeg encode: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo_jpeg(w: u32, h: u32) -> Vec<u8> {
        let rgb: Vec<u8> = (0..w * h).flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 90]).collect();
        encode_jpeg(&rgb, w, h, 90).expect("encode")
    }

    #[test]
    fn view_zero_is_exactly_the_agents_input_and_the_others_differ() {
        let jpeg = photo_jpeg(640, 480);
        let exif = ExifFacts::parse(&jpeg);
        let mut resizer = Resizer::new();
        let agent =
            decode::prepare_with(&mut resizer, &jpeg, Some(&exif), decode::Options { thumbnail: false, threads: 2 })
                .expect("agent path");
        let mut rng = fastrand::Rng::with_seed(7);
        let v = views(&mut resizer, &jpeg, &exif, MAX_VIEWS, &mut rng).expect("views");
        assert_eq!(v.len(), MAX_VIEWS);
        assert_eq!(v[0], agent.input, "view 0 is the agent's own input");
        assert!(v.iter().all(|x| x.len() == 3 * SIDE * SIDE));
        for (k, x) in v.iter().enumerate().skip(1) {
            assert_ne!(x, &v[0], "view {k} is another view");
        }
        assert_eq!(mirrored(&v[1]), v[0], "view 1 is the mirror of view 0");
        let n = SIDE * SIDE;
        assert_eq!(&v[4][..n], &v[4][n..2 * n], "view 4 is grey");
        // the same seed gives the same views; one view is just the agent's input
        let again = views(&mut resizer, &jpeg, &exif, MAX_VIEWS, &mut fastrand::Rng::with_seed(7)).expect("views");
        assert_eq!(again, v);
        assert_eq!(views(&mut resizer, &jpeg, &exif, 1, &mut rng).expect("one").len(), 1);
    }
}
