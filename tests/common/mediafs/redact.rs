//! Where the EXIF GPS bytes of a JPEG lie, so a read can replace them with zeros.
//!
//! MediaProvider (`MediaProvider.getRedactionRanges`, built on `ExifInterface
//! .getAttributeRange`) collects the byte range of each location tag's value and hands the
//! list to the FUSE daemon as a `RedactionInfo` (`jni/RedactionInfo.cpp`); `pf_read` then
//! serves zeros for those ranges (`do_read_with_redaction` in `jni/FuseDaemon.cpp`). We do
//! the same for the GPS IFD of the first EXIF APP1 segment: the value bytes of every GPS tag
//! (inline or out of line) become zeros, so a reader sees `0/0` rationals and no position.

/// Half-open byte ranges `[start, end)` of the file to serve as zeros, sorted.
pub fn gps_ranges(head: &[u8]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let Some(tiff) = exif_tiff_offset(head) else { return out };
    let t = &head[tiff..];
    let le = match t.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return out,
    };
    let u16_at = |o: usize| {
        t.get(o..o + 2).map(|b| if le { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) })
    };
    let u32_at = |o: usize| {
        t.get(o..o + 4).map(|b| {
            let a = [b[0], b[1], b[2], b[3]];
            if le {
                u32::from_le_bytes(a)
            } else {
                u32::from_be_bytes(a)
            }
        })
    };
    let Some(ifd0) = u32_at(4) else { return out };
    let ifd0 = ifd0 as usize;
    let Some(n) = u16_at(ifd0) else { return out };
    let mut gps = None;
    for i in 0..n as usize {
        let e = ifd0 + 2 + 12 * i;
        if u16_at(e) == Some(0x8825) {
            gps = u32_at(e + 8).map(|v| v as usize);
        }
    }
    let Some(gps) = gps else { return out };
    let Some(n) = u16_at(gps) else { return out };
    for i in 0..n as usize {
        let e = gps + 2 + 12 * i;
        let (Some(typ), Some(count)) = (u16_at(e + 2), u32_at(e + 4)) else { break };
        let unit = match typ {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 => 4,
            5 | 10 | 12 => 8,
            _ => continue,
        };
        let len = unit * count as usize;
        let start = if len <= 4 { e + 8 } else { u32_at(e + 8).unwrap_or(0) as usize };
        if len > 0 && start + len <= t.len() {
            out.push(((tiff + start) as u64, (tiff + start + len) as u64));
        }
    }
    out.sort_unstable();
    out
}

/// Offset of the TIFF header inside the first `Exif\0\0` APP1 segment of a JPEG.
fn exif_tiff_offset(b: &[u8]) -> Option<usize> {
    if b.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() && b[i] == 0xFF {
        let marker = b[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        if marker == 0xE1 && b.get(i + 4..i + 10) == Some(b"Exif\0\0") {
            return Some(i + 10);
        }
        i += 2 + len;
    }
    None
}

/// Zero the parts of `buf` (the file's bytes from `offset`) that fall in `ranges`.
pub fn apply(buf: &mut [u8], offset: u64, ranges: &[(u64, u64)]) {
    let end = offset + buf.len() as u64;
    for &(s, e) in ranges {
        let (s, e) = (s.max(offset), e.min(end));
        if s < e {
            buf[(s - offset) as usize..(e - offset) as usize].fill(0);
        }
    }
}
