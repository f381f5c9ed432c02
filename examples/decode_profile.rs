//! Where a no-thumbnail 12 MP photo's decode time goes (issue 12, part 3): per photo of a
//! folder, `jpeg-decoder`'s 1/8 DCT-scaled decode (the old path) beside the lean DC-only
//! decode's stages (markers, unstuffing, entropy walk, the same walk one Huffman symbol at a
//! time without the skip tables, colour conversion) on one thread,
//! the lean decode on two threads, and the crop/resize/normalise to the model input.
//! Medians in ms over 3 rounds (the first a warm-up).
//!
//!     cargo run --release --example decode_profile [-- /tmp/fotovakt-bench-flavours/none]

use std::time::Instant;

use fast_image_resize::Resizer;
use fotovakt::classify::{decode, eighth};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/fotovakt-bench-flavours/none".into());
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("photo folder").flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jpg"));
    files.sort();
    let photos: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("read")).collect();
    let mut resizer = Resizer::new();
    let names = [
        "jpeg-decoder 1/8",
        "lean: markers",
        "lean: unstuff",
        "lean: entropy walk",
        "  one symbol a time",
        "lean: colour",
        "lean 1 thread",
        "lean 2 threads",
        "to model input",
    ];
    let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let ms = |s: Instant| s.elapsed().as_secs_f64() * 1e3;
    for round in 0..3 {
        for b in &photos {
            let s = Instant::now();
            let (rgb, w, h, _) = decode::decode_jpeg_scaled(b, 224).expect("jpeg-decoder");
            let old = ms(s);
            let st = eighth::stages(b).expect("lean decode takes this photo");
            let s = Instant::now();
            let one = eighth::decode(b, 1).expect("lean");
            let l1 = ms(s);
            let s = Instant::now();
            let two = eighth::decode(b, 2).expect("lean");
            let l2 = ms(s);
            assert!(one.rgb == two.rgb, "two threads differ from one");
            let s = Instant::now();
            let input = decode::to_input(&mut resizer, rgb, w, h, 1).expect("input");
            let inp = ms(s);
            std::hint::black_box(input);
            if round > 0 {
                for (i, v) in [old, st[0], st[1], st[2], st[3], st[4], l1, l2, inp].into_iter().enumerate() {
                    t[i].push(v);
                }
            }
        }
    }
    println!(
        "{} photos of {dir}, {} bytes median",
        photos.len(),
        median(photos.iter().map(|p| p.len() as f64).collect())
    );
    for (n, v) in names.iter().zip(t) {
        println!("  {n:<22} {:>7.2} ms", median(v));
    }
}
