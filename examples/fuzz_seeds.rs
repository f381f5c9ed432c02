//! Writes the generated fuzz seeds to `fuzz/seeds/<target>/` (run by `scripts/fuzz`):
//! `cargo run --example fuzz_seeds [DIR]`.
//!
//! Every seed is made here, from `SamplePhoto` and the `image` crate's encoders, or is a
//! config text from the README and the tests, so the seeds carry no third-party content.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use fotovakt::classify::decode::with_exif;
use fotovakt::sample::SamplePhoto;
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};

fn main() -> std::io::Result<()> {
    let root = std::env::args().nth(1).map_or_else(|| PathBuf::from("fuzz/seeds"), PathBuf::from);
    let intake = intake_seeds();
    let config = config_seeds();
    write_all(&root.join("intake"), &intake)?;
    write_all(&root.join("config"), &config)?;
    println!("{} intake and {} config seeds in {}", intake.len(), config.len(), root.display());
    Ok(())
}

fn write_all(dir: &Path, seeds: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

fn time(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("valid seed time")
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("in-memory encode");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    c.extend_from_slice(&body);
    c.extend_from_slice(&crc32(&body).to_be_bytes());
    c
}

/// The TIFF payload of a minimal EXIF block with one orientation entry.
fn tiff_orientation(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0*\0\0\0\x08\0\x01".to_vec();
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn intake_seeds() -> Vec<(String, Vec<u8>)> {
    let mut s: Vec<(String, Vec<u8>)> = Vec::new();
    jpeg_seeds(&mut s);
    format_seeds(&mut s);
    bomb_seeds(&mut s);
    kind_seeds(&mut s);
    s
}

fn grey() -> DynamicImage {
    DynamicImage::ImageLuma8(image::GrayImage::from_fn(160, 120, |x, y| image::Luma([(x * y % 251) as u8])))
}

/// Camera-like JPEGs, EXIF thumbnails, truncations.
fn jpeg_seeds(s: &mut Vec<(String, Vec<u8>)>) {
    // Camera-like JPEGs: sizes, qualities, orientations, capture times, GPS in every quadrant.
    let gps =
        [None, Some((69.6617, 30.1271)), Some((-33.8688, 151.2093)), Some((40.7128, -74.006)), Some((-89.9, -179.9))];
    for o in 1..=8u16 {
        let p = SamplePhoto {
            width: 96 + 16 * u32::from(o),
            height: 64 + 8 * u32::from(o),
            seed: u64::from(o),
            capture_time: (o % 2 == 0).then(|| time("2026-11-23 09:15:00")),
            gps: gps[usize::from(o) % gps.len()],
            orientation: Some(o),
            quality: 40,
        };
        s.push((format!("jpeg-orient{o}.jpg"), p.jpeg()));
    }
    for (w, h, q) in [(1, 1, 50), (8, 300, 30), (300, 8, 30), (224, 224, 60), (240, 180, 90), (500, 400, 20)] {
        let p = SamplePhoto { width: w, height: h, seed: u64::from(w * h), quality: q, ..Default::default() };
        s.push((format!("jpeg-{w}x{h}-q{q}.jpg"), p.jpeg()));
    }
    let full = SamplePhoto {
        width: 320,
        height: 240,
        seed: 9,
        capture_time: Some(time("1999-12-31 23:59:59")),
        gps: Some((59.9139, 10.7522)),
        orientation: Some(6),
        quality: 50,
    };
    s.push(("jpeg-all-exif.jpg".into(), full.jpeg()));
    // EXIF thumbnails the way phones write them: the same aspect (used), another aspect
    // (refused), too small (refused), and a corrupt one.
    let thumb = |w, h| SamplePhoto { width: w, height: h, seed: 3, quality: 40, ..Default::default() }.jpeg();
    let photo = SamplePhoto { width: 512, height: 384, seed: 4, quality: 30, ..Default::default() }.jpeg();
    let tall = SamplePhoto { width: 240, height: 320, seed: 5, quality: 30, ..Default::default() }.jpeg();
    for (name, base, t, o) in [
        ("thumb-same-aspect", &photo, thumb(128, 96), 1),
        ("thumb-rotated", &photo, thumb(128, 96), 6),
        ("thumb-tall", &tall, thumb(96, 128), 8),
        ("thumb-other-aspect", &photo, thumb(120, 120), 1),
        ("thumb-too-small", &photo, thumb(64, 48), 3),
    ] {
        s.push((format!("{name}.jpg"), with_exif(base, o, Some(&t)).expect("thumbnail fits")));
    }
    let mut corrupt = thumb(128, 96);
    corrupt.truncate(corrupt.len() / 3);
    s.push(("thumb-corrupt.jpg".into(), with_exif(&photo, 2, Some(&corrupt)).expect("fits")));
    s.push(("thumb-not-jpeg.jpg".into(), with_exif(&photo, 1, Some(b"not a jpeg at all")).expect("fits")));
    // Grey JPEG, truncations, a broken EXIF segment.
    let grey = grey();
    s.push(("jpeg-grey.jpg".into(), encode(&grey, ImageFormat::Jpeg)));
    let base = full.jpeg();
    for cut in [3, 20, 120, base.len() / 2, base.len() - 2] {
        s.push((format!("jpeg-cut{cut}.jpg"), base[..cut].to_vec()));
    }
    let mut bad_exif = base.clone();
    bad_exif[12..18].copy_from_slice(b"\xff\xff\xff\xff\xff\xff");
    s.push(("jpeg-bad-ifd.jpg".into(), bad_exif));
}

/// Other formats through the `image` crate.
fn format_seeds(s: &mut Vec<(String, Vec<u8>)>) {
    let grey = grey();
    // Other formats through the `image` crate: RGB, RGBA (alpha over white), grey.
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(48, 40, |x, y| image::Rgb([x as u8 * 5, y as u8 * 6, 77])));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(40, 48, |x, y| {
        image::Rgba([200, x as u8 * 6, y as u8 * 5, (x * 6) as u8])
    }));
    for (fmt, ext) in [
        (ImageFormat::Png, "png"),
        (ImageFormat::WebP, "webp"),
        (ImageFormat::Gif, "gif"),
        (ImageFormat::Bmp, "bmp"),
        (ImageFormat::Tiff, "tiff"),
    ] {
        s.push((format!("rgb.{ext}"), encode(&rgb, fmt)));
        if fmt != ImageFormat::Bmp {
            s.push((format!("rgba.{ext}"), encode(&rgba, fmt)));
        }
    }
    s.push(("grey.png".into(), encode(&grey, ImageFormat::Png)));
    // PNG with an eXIf chunk (orientation 6) before IDAT.
    let png = encode(&rgb, ImageFormat::Png);
    let mut exif_png = png[..33].to_vec();
    exif_png.extend_from_slice(&png_chunk(b"eXIf", &tiff_orientation(6)));
    exif_png.extend_from_slice(&png[33..]);
    s.push(("png-exif-orient6.png".into(), exif_png));
}

/// Decompression bombs.
fn bomb_seeds(s: &mut Vec<(String, Vec<u8>)>) {
    // Decompression bombs: absurd declared dimensions over a tiny body.
    for (w, h) in [(30_000u32, 30_000u32), (100_000, 1), (1, 100_000), (29_999, 6_666)] {
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
        bomb.extend_from_slice(&png_chunk(b"IHDR", &ihdr));
        bomb.extend_from_slice(&png_chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
        bomb.extend_from_slice(&png_chunk(b"IEND", &[]));
        s.push((format!("bomb-{w}x{h}.png"), bomb));
    }
    for (w, h) in [(65_535u16, 65_535u16), (29_000, 6_800), (30_000, 224)] {
        // SOI, DQT, SOF0 (3 components), DHT-less scan: header says huge, body is nothing.
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x43, 0x00];
        j.extend(std::iter::repeat_n(1u8, 64));
        j.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[0x03, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0, 0xFF, 0xD9]);
        s.push((format!("bomb-{w}x{h}.jpg"), j));
    }
    // Progressive (SOF2) frames with one DC scan of a single byte (see `progressive_jpeg`).
    for (w, h) in [(640u16, 480u16), (4_000, 3_000)] {
        let j = fotovakt::sample::progressive_jpeg(w, h);
        s.push((format!("progressive-{w}x{h}.jpg"), j));
    }
    let mut gif = b"GIF89a\xff\xff\xff\xff\x00\x00\x00".to_vec();
    gif.extend_from_slice(b",\0\0\0\0\xff\xff\xff\xff\0\x02\x02D\x01\0;");
    s.push(("bomb-65535.gif".into(), gif));
    let mut bmp = b"BM".to_vec();
    for v in [0u32, 0, 54, 40] {
        bmp.extend_from_slice(&v.to_le_bytes());
    }
    bmp.extend_from_slice(&30_000i32.to_le_bytes());
    bmp.extend_from_slice(&(-30_000i32).to_le_bytes());
    bmp.extend_from_slice(&[1, 0, 24, 0, 0, 0, 0, 0]);
    bmp.extend_from_slice(&[0; 20]);
    s.push(("bomb-30000.bmp".into(), bmp));
    let mut vp8x = b"RIFF\x1e\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
    vp8x.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    s.push(("bomb-vp8x.webp".into(), vp8x));
}

/// Kinds the agent recognises but does not decode, and no media at all.
fn kind_seeds(s: &mut Vec<(String, Vec<u8>)>) {
    // Kinds the agent recognises but does not decode, and things that are no media at all.
    for (name, bytes) in [
        ("heic.heic", &b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\x08meta"[..]),
        ("avif.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"),
        ("mp4.mp4", b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2\0\0\0\x08free"),
        ("3gp.3gp", b"\0\0\0\x14ftyp3gp4\0\0\0\0isom"),
        ("mov.mov", b"\0\0\0\x14ftypqt  \0\0\0\0qt  "),
        ("webm.webm", b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm"),
        ("tiff-mm.tif", b"MM\0*\0\0\0\x08\0\0"),
        ("empty.jpg", b""),
        ("text.jpg", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("soi-only.jpg", b"\xff\xd8\xff"),
        ("bm-only.bmp", b"BM"),
        ("riff-only.webp", b"RIFF\0\0\0\0WEBP"),
        ("gif-only.gif", b"GIF89a"),
        ("png-sig-only.png", b"\x89PNG\r\n\x1a\n"),
    ] {
        s.push((name.to_string(), bytes.to_vec()));
    }
}

fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let readme = r#"store = "/var/lib/fotovakt/store"  # default: <platform data dir>/fotovakt/store
cameras = ["/sdcard/DCIM/Camera"]  # default: none (watched non-recursively)
sync_roots = []                    # extra folders treated as sync-enabled
reconcile_interval = "5m"          # default 5m
settle = "2s"                      # created-but-not-closed files wait until unchanged this long
max_file_bytes = 8589934592        # larger files are rejected (default 8 GiB)
max_image_bytes = 67108864         # larger images are not decoded for the classifier (64 MiB)

[duty]                             # default: no shifts
shifts = [{ days = ["mon", "tue", "wed", "thu", "fri"], start = "07:00", end = "15:30" },
          { days = ["sat"], start = "22:00", end = "06:00" }]   # end < start: past midnight

[[work_sites]]                     # default: none
name = "Storskog border crossing"
lat = 69.6617
lon = 30.1271
radius_m = 500

[policy]
# threshold = 0.35                 # default: the model head's threshold
on_duty_threshold_factor = 0.6
work_site_threshold_factor = 0.3
work_site_action = "quarantine"    # or "lower-threshold"
unjudged_on_duty = "quarantine"    # or "keep"

[classifier]
enabled = true
# model = "models/efficientnet_lite0.int8.onnx"   # default: found beside the binary or in models/
# head = "models/case_head.json"
# ort_dylib = "/path/to/libonnxruntime.so"        # default: $ORT_DYLIB_PATH, beside the binary, Python's onnxruntime
threads = 1
"#;
    let full = r#"
store = "/data/store"
cameras = ["/sdcard/DCIM/Camera"]
reconcile_interval = "30s"
[duty]
shifts = [{ days = ["mon", "fri"], start = "22:00", end = "06:00" }]
[[work_sites]]
name = "Storskog"
lat = 69.66
lon = 30.13
radius_m = 500
[policy]
threshold = 0.4
work_site_action = "lower-threshold"
"#;
    let mut s: Vec<(String, Vec<u8>)> = vec![
        ("readme.toml".into(), readme.into()),
        ("tests-full.toml".into(), full.into()),
        ("empty.toml".into(), Vec::new()),
        ("classifier.toml".into(), b"[classifier]\nenabled = false\nmodel = \"m.onnx\"\nhead = \"h.json\"\nort_dylib = \"/x/libonnxruntime.so\"\nthreads = 4\nthumbnail_first = false\n".to_vec()),
        ("durations.toml".into(), b"reconcile_interval = \"1h 30m\"\nsettle = \"250ms\"\n".to_vec()),
        ("shift-24.toml".into(), b"[duty]\nshifts = [{ days = [\"sun\"], start = \"00:00\", end = \"24:00\" }]\n".to_vec()),
        ("site-edges.toml".into(), b"[[work_sites]]\nname = \"pole\"\nlat = -90.0\nlon = 180.0\nradius_m = 1e-3\n[[work_sites]]\nname = \"x\"\nlat = 0\nlon = -180\nradius_m = 40000000\n".to_vec()),
        ("policy-keep.toml".into(), b"[policy]\nthreshold = 0.0\non_duty_threshold_factor = 1.0\nwork_site_threshold_factor = 1e-9\nunjudged_on_duty = \"keep\"\n".to_vec()),
        // Rejected values, each naming its reason.
        ("bad-unknown-field.toml".into(), b"stroe = \"/x\"".to_vec()),
        ("bad-threshold.toml".into(), b"[policy]\nthreshold = 3.0".to_vec()),
        ("bad-lat.toml".into(), b"[[work_sites]]\nname='a'\nlat=95\nlon=0\nradius_m=1".to_vec()),
        ("bad-clock.toml".into(), b"[duty]\nshifts=[{days=['mon'],start='25:00',end='01:00'}]".to_vec()),
        ("bad-duration.toml".into(), b"reconcile_interval = \"soon\"".to_vec()),
        ("bad-day.toml".into(), b"[duty]\nshifts=[{days=['moon'],start='01:00',end='02:00'}]".to_vec()),
        ("bad-nan.toml".into(), b"[[work_sites]]\nname='n'\nlat=nan\nlon=inf\nradius_m=-0.0\n".to_vec()),
        ("bad-zero.toml".into(), b"max_file_bytes = 0\nreconcile_interval = \"999ms\"\n".to_vec()),
        ("bad-not-utf8.toml".into(), b"store = \"\xff\xfe\"\n".to_vec()),
    ];
    // Lines for the name and ledger-data parsers.
    let sha = "ab".repeat(32);
    let lines = format!(
        "07:00\n24:00\n23:59\n24:01\n7:5\n:\n5m\n1h 30m\n2s\n250ms\n100years\n\
         objects/ab/{sha}-17.jpg\n{sha}-9223372036854775807.tar.gz\n{sha}--1\n\
         manual\nreleased\nsession\nwork_site\nclassifier\nduty_hours\ndefault\n\
         {{\"state\":\"quarantined\",\"sha256\":\"{sha}\",\"store_name\":\"objects/ab/{sha}-1.jpg\",\"size\":12}}\n\
         IMG_20261123_101500.jpg\n.pending-1732380000-IMG_1.jpg\n.trashed-1-a.jpg\nIMG_1.jpg~\nVID_2.MP4\n"
    );
    s.push(("lines.txt".into(), lines.into_bytes()));
    s
}
