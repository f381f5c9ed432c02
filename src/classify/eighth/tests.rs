//! The lean decoder against the full one, on generated JPEGs of every sampling.
use super::*;

fn noisy(w: u32, h: u32, seed: u64) -> image::RgbImage {
    let mut s = seed | 1;
    image::RgbImage::from_fn(w, h, |x, y| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let n = (s % 40) as u32;
        image::Rgb([
            ((x * 255 / w.max(1)) + n).min(255) as u8,
            ((y * 255 / h.max(1)) + n).min(255) as u8,
            (((x + y) % 256) / 2 + n).min(255) as u8,
        ])
    })
}

fn encode(img: &image::RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(img).expect("encode");
    out
}

/// The reference: jpeg-decoder's own 1/8 decode.
fn reference(bytes: &[u8]) -> (Vec<u8>, u16, u16) {
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(bytes));
    d.read_info().expect("info");
    let info = d.info().expect("info");
    let (w, h) = d.scale(info.width.div_ceil(8), info.height.div_ceil(8)).expect("scale");
    (d.decode().expect("decode"), w, h)
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| f64::from((i32::from(x) - i32::from(y)).abs())).sum::<f64>() / a.len() as f64
}

#[test]
fn matches_the_full_decoder_at_one_eighth_and_two_threads_match_one() {
    let img = noisy(1600, 1200, 7);
    let bytes = encode(&img, 92);
    assert!(bytes.len() > MIN_PARALLEL_BYTES, "{} bytes: too small to split", bytes.len());
    let one = decode(&bytes, 1).expect("baseline decodes");
    let two = decode(&bytes, 2).expect("baseline decodes");
    assert_eq!((one.width, one.height, one.full), (200, 150, (1600, 1200)));
    assert!(one.rgb == two.rgb, "the two-thread seam changed pixels");
    let (r, w, h) = reference(&bytes);
    assert_eq!((u32::from(w), u32::from(h)), (one.width, one.height));
    let d = mean_abs_diff(&one.rgb, &r);
    assert!(d < 3.0, "mean difference {d} from jpeg-decoder's 1/8 decode");
}

#[test]
fn odd_sizes_and_grey_match_too() {
    for (w, h) in [(1, 1), (17, 9), (333, 251), (8, 2000)] {
        let bytes = encode(&noisy(w, h, u64::from(w)), 85);
        let one = decode(&bytes, 2).expect("decodes");
        let (r, rw, rh) = reference(&bytes);
        assert_eq!((one.width, one.height), (u32::from(rw), u32::from(rh)), "{w}x{h}");
        assert!(mean_abs_diff(&one.rgb, &r) < 4.0, "{w}x{h}");
    }
    let grey = image::GrayImage::from_fn(640, 480, |x, y| image::Luma([((x ^ y) & 255) as u8]));
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(&grey).expect("encode");
    let g = decode(&bytes, 1).expect("grey decodes");
    let (r, _, _) = reference(&bytes);
    let r3: Vec<u8> = r.iter().flat_map(|&v| [v, v, v]).collect();
    assert!(mean_abs_diff(&g.rgb, &r3) < 2.0);
}

fn encoded(img: &image::RgbImage, sampling: jpeg_encoder::SamplingFactor, restart: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = jpeg_encoder::Encoder::new(&mut out, 90);
    e.set_sampling_factor(sampling);
    if restart > 0 {
        e.set_restart_interval(restart);
    }
    e.encode(img.as_raw(), img.width() as u16, img.height() as u16, jpeg_encoder::ColorType::Rgb).expect("encode");
    out
}

/// The number of components the first scan header (SOS) names.
fn parse_scan_components(bytes: &[u8]) -> Option<u8> {
    let mut i = 2;
    while i + 4 < bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if bytes[i + 1] == 0xDA {
            return bytes.get(i + 4).copied();
        }
        i += 2 + len;
    }
    None
}

#[test]
fn every_sampling_and_restart_markers_split_exactly() {
    // Files from another encoder (jpeg-encoder), every chroma layout, with and without
    // restart markers. jpeg-encoder writes 4:1:1 as one scan per component (its SOS names
    // one component), which the lean decoder declines by design (it takes one interleaved
    // scan of every component); a declined file takes jpeg-decoder's path, so the decode
    // still succeeds. Whatever the lean decoder takes, it must decode exactly, split or not.
    use jpeg_encoder::SamplingFactor as S;
    let img = noisy(720, 536, 11);
    let (mut taken, mut declined) = (Vec::new(), Vec::new());
    for sampling in [S::R_4_4_4, S::R_4_2_2, S::R_4_2_0, S::R_4_1_1, S::R_4_4_0] {
        for restart in [0u16, 1, 7, 64] {
            let bytes = encoded(&img, sampling, restart);
            let (r, w, h) = reference(&bytes);
            let Some(one) = decode_tuned(&bytes, 1, 0, 0) else {
                let scan_components = parse_scan_components(&bytes);
                assert_eq!(scan_components, Some(1), "{sampling:?}/{restart}: declined but not a one-component scan");
                declined.push(format!("{sampling:?}/{restart}"));
                let (_, fw, fh, _) = super::super::decode::decode_jpeg_fast(&bytes, 60, 2).expect("fallback decodes");
                assert_eq!((fw, fh), (u32::from(w), u32::from(h)));
                continue;
            };
            let two = decode_tuned(&bytes, 2, 0, 0).expect("one thread took it, two must too");
            assert!(one.rgb == two.rgb, "{sampling:?} restart {restart}: two threads differ");
            assert_eq!((one.width, one.height), (u32::from(w), u32::from(h)));
            let d = mean_abs_diff(&one.rgb, &r);
            assert!(d < 4.0, "{sampling:?} restart {restart}: mean difference {d}");
            taken.push(format!("{sampling:?}/{restart}"));
        }
    }
    eprintln!("lean decode took {taken:?}; declined {declined:?}");
}

#[test]
fn the_speculative_seam_is_exact_wherever_the_split_falls() {
    // many photos, each split at its own middle bit: one thread and two agree exactly
    for seed in 0..24u64 {
        let (w, h) = (240 + 16 * seed as u32, 180 + 8 * seed as u32);
        let bytes = encode(&noisy(w, h, seed), 70 + (seed % 30) as u8);
        let one = decode_tuned(&bytes, 1, 0, 0).expect("decodes");
        let two = decode_tuned(&bytes, 2, 0, 0).expect("decodes");
        assert!(one.rgb == two.rgb, "seed {seed}: two threads differ");
    }
}

#[test]
fn progressive_and_broken_files_go_to_the_full_decoder() {
    assert!(decode(&crate::sample::progressive_jpeg(640, 480), 2).is_none());
    let bytes = encode(&noisy(640, 480, 3), 90);
    for cut in [0, 2, 100, 400] {
        assert!(decode(&bytes[..cut.min(bytes.len())], 2).is_none(), "cut at {cut}");
    }
    // garbage in the entropy-coded data: either refused or an image of the right size
    let mut bad = bytes.clone();
    let n = bad.len();
    for b in &mut bad[n / 2..n / 2 + 64] {
        *b = 0xA5;
    }
    if let Some(e) = decode(&bad, 2) {
        assert_eq!((e.width, e.height), (80, 60));
    }
}

/// Every block's DC value and the final bit position, walked with the skip tables or one
/// symbol at a time; `None` where the walk fails.
fn walk_both(bytes: &[u8]) -> [Option<(Vec<i32>, usize)>; 2] {
    let scan = parse(bytes).expect("baseline");
    let (data, _) = unstuff(&bytes[scan.data.clone()]);
    let real = data.len() - PAD;
    let bpm = scan.block_comp.len();
    let walk = |skip: bool| {
        let mut w = Walker::new(&scan, &data, real * 8, 0);
        let mut dc = vec![0i32; scan.mcux * scan.mcuy * bpm];
        for out in dc.chunks_exact_mut(bpm) {
            if skip {
                w.mcu_with::<true>(out)?;
            } else {
                w.mcu_with::<false>(out)?;
            }
        }
        Some((dc, w.pos()))
    };
    [walk(true), walk(false)]
}

#[test]
fn skip_tables_walk_exactly_like_one_symbol_at_a_time() {
    // Every quality (at 100 most blocks have no end-of-block: the skip entry must never take
    // a pair of the next block), two encoders, every chroma layout, and damaged data: the
    // same DC values and the same end position, or the same failure.
    use jpeg_encoder::SamplingFactor as S;
    let mut files = Vec::new();
    for (i, q) in [20u8, 50, 75, 90, 95, 100].into_iter().enumerate() {
        files.push(encode(&noisy(333 + 8 * i as u32, 251, u64::from(q)), q));
    }
    let img = noisy(320, 240, 5);
    for sampling in [S::R_4_4_4, S::R_4_2_2, S::R_4_2_0, S::R_4_4_0] {
        files.push(encoded(&img, sampling, 0));
    }
    let grey = image::GrayImage::from_fn(200, 120, |x, y| image::Luma([((x * y) & 255) as u8]));
    let mut g = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut g, 100).encode_image(&grey).expect("encode");
    files.push(g);
    let mut walked = 0;
    for (i, bytes) in files.iter().enumerate() {
        let [skip, one] = walk_both(bytes);
        assert!(skip.is_some(), "file {i}: intact data must walk");
        assert!(skip == one, "file {i}: the skip tables changed the walk");
        walked += 1;
        let scan = parse(bytes).expect("baseline");
        for at in [scan.data.start + 10, (scan.data.start + scan.data.end) / 2] {
            let mut bad = bytes.clone();
            for (j, b) in bad[at..(at + 48).min(scan.data.end - 2)].iter_mut().enumerate() {
                *b = [0xA5, 0x5A, 0xC3, 0x00, 0x3C][j % 5];
            }
            let [skip, one] = walk_both(&bad);
            assert!(skip == one, "file {i} damaged at {at}: the skip tables changed the walk");
        }
    }
    assert_eq!(walked, files.len());
}
