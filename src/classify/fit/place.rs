//! Putting the head file in place atomically: whoever reads the path (the agent at start, an
//! EMM file push, a copy) sees the old file or the whole new one, never a half-written one,
//! and after a power cut the same.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `target`: a temporary file beside it (same folder, so the rename stays on
/// one filesystem), fsync, rename over `target`, fsync the folder. A bare relative name
/// means the current folder. The temporary file is removed on any failure.
///
/// One self-contained function on purpose: the shared output-placement helper (issue 28)
/// replaces it at merge.
pub fn place_file(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the output path names no file"))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("head.json");
        std::fs::write(&target, b"old").expect("old");
        place_file(&target, b"new head").expect("placed");
        assert_eq!(std::fs::read(&target).expect("read"), b"new head");
        let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("head.json")]);
        let err = place_file(&dir.path().join("missing/head.json"), b"x").expect_err("no folder");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
