//! Frames the core cannot decode itself, supplied by the platform on request.
//!
//! Videos and HEIC/HEIF/AVIF photos have no decoder in the core; on Android the platform has
//! both (`MediaMetadataRetriever.getScaledFrameAtTime`, `ImageDecoder`). The Android bridge
//! installs a [`FrameSource`] that calls back into the app; the agent asks it for a JPEG of a
//! file only after the file was hashed, only when the classifier is loaded and the verdict
//! depends on a score. Every path that finds a file (MediaStore, the core's watcher,
//! reconcile) goes through the same pipeline, so all of them get the same frame-based
//! decision. With no source installed (the CLI on a desktop) such files are decided by
//! context, as before.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::media::MediaKind;

/// Returns a JPEG (scaled, in memory) of one frame of `path`, or `None` when it cannot.
pub type FrameSource = dyn Fn(&Path, MediaKind) -> Option<Vec<u8>> + Send + Sync;

fn slot() -> &'static RwLock<Option<Arc<FrameSource>>> {
    static SOURCE: RwLock<Option<Arc<FrameSource>>> = RwLock::new(None);
    &SOURCE
}

/// Kinds the core asks the platform for a frame of.
pub fn needs_platform_frame(kind: MediaKind) -> bool {
    matches!(kind, MediaKind::Video | MediaKind::Heif)
}

/// Installs (or, with `None`, removes) the process's frame source.
pub fn install(source: Option<Arc<FrameSource>>) {
    *slot().write().unwrap_or_else(|p| p.into_inner()) = source;
}

/// A frame of `path` from the installed source, if there is one and it could decode it.
pub fn fetch(path: &Path, kind: MediaKind) -> Option<Vec<u8>> {
    let source = slot().read().unwrap_or_else(|p| p.into_inner()).clone()?;
    let frame = source(path, kind).filter(|f| !f.is_empty());
    if frame.is_none() {
        tracing::info!(kind = kind.as_str(), "platform gave no frame; decided by context");
        tracing::debug!(path = %path.display(), "file without a frame");
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_uses_the_installed_source_and_nothing_else() {
        assert!(needs_platform_frame(MediaKind::Video) && needs_platform_frame(MediaKind::Heif));
        assert!(!needs_platform_frame(MediaKind::Jpeg));
        install(Some(Arc::new(|p: &Path, k: MediaKind| {
            (k == MediaKind::Heif && p.ends_with("a.heic")).then(|| vec![0xff, 0xd8, 0xff])
        })));
        assert_eq!(fetch(Path::new("/x/a.heic"), MediaKind::Heif), Some(vec![0xff, 0xd8, 0xff]));
        assert_eq!(fetch(Path::new("/x/b.heic"), MediaKind::Heif), None);
        install(None);
        assert_eq!(fetch(Path::new("/x/a.heic"), MediaKind::Heif), None);
    }
}
