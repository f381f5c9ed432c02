//! The officer's in-app preview of a quarantined item: decoded here from the app-private
//! store with the classifier's own decoders and limits (never through a content URI), or,
//! for what the core cannot decode, the store file for the platform to decode in-app.

use std::path::PathBuf;

use super::{BridgeError, BridgeResult, Code};
use crate::agent::Agent;

/// The store file of a quarantined item (app-private), for the app's in-app preview of
/// what the core cannot decode (HEIC, video): the app decodes it with the platform and shows
/// it in a FLAG_SECURE window. Never handed to another app.
pub(super) fn store_file(agent: &Agent, key: &str) -> BridgeResult<PathBuf> {
    let item = agent.find(key)?;
    if item.state != crate::ledger::ItemState::Quarantined {
        return Err(BridgeError::new(
            Code::RefusedNotQuarantined,
            format!("item {} is {}, not in the store", item.id, item.state.as_str()),
        ));
    }
    let name = item
        .store_name
        .ok_or_else(|| BridgeError::new(Code::RefusedNoStoreFile, format!("item {} has no store file", item.id)))?;
    Ok(agent.store().root().join(name))
}

/// The core cannot make a preview of this file: the app decodes it on the platform.
fn unsupported(why: impl std::fmt::Display) -> BridgeError {
    BridgeError::new(Code::PreviewUnsupported, why.to_string())
}

/// A downscaled JPEG (longest side <= `max_side`, EXIF orientation applied) of a quarantined
/// item, decoded from the store with the classifier's decoders and their limits. Errors for
/// formats the core cannot decode (the app then decodes [`store_file`] with the platform).
pub fn preview_jpeg(agent: &Agent, key: &str, max_side: u32) -> BridgeResult<Vec<u8>> {
    use crate::classify::decode;
    let path = store_file(agent, key)?;
    let limit = agent.config().max_image_bytes;
    let io = |e: std::io::Error| BridgeError::new(Code::Io, format!("{}: {e}", path.display()));
    let len = std::fs::metadata(&path).map_err(io)?.len();
    if len > limit {
        return Err(unsupported(format!("{len} bytes is over max_image_bytes ({limit}); no preview")));
    }
    let bytes = std::fs::read(&path).map_err(io)?;
    let max_side = max_side.clamp(64, 4096);
    let (rgb, w, h, orientation) = match decode::sniff(&bytes) {
        decode::Format::Jpeg => {
            let (rgb, w, h, _) = decode::decode_jpeg_scaled(&bytes, max_side / 2).map_err(unsupported)?;
            (rgb, w, h, decode::jpeg_exif(&bytes).orientation)
        }
        decode::Format::Other(f) => decode::decode_other(&bytes, f).map_err(unsupported)?,
        decode::Format::Unsupported(what) => {
            return Err(unsupported(format!("no decoder here for {what}; decode it on the platform")))
        }
    };
    let img = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| BridgeError::new(Code::Internal, "decoded buffer does not match its size"))?;
    let mut img = image::DynamicImage::ImageRgb8(img);
    if w.max(h) > max_side {
        img = img.thumbnail(max_side, max_side);
    }
    if let Some(o) = image::metadata::Orientation::from_exif(orientation.min(255) as u8) {
        img.apply_orientation(o);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img.to_rgb8())
        .map_err(|e| BridgeError::new(Code::Internal, format!("preview encode: {e}")))?;
    Ok(out)
}
