//! The 1/8-scale decode of a baseline JPEG from its DC coefficients alone, on one or two
//! cores: the classifier's path for a photo without a usable EXIF thumbnail.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, the block's mean, which is its DC
//! coefficient times the DC quantiser. So the AC coefficients need only be *skipped*:
//! nothing is stored, dequantised or transformed. And since their values are never needed,
//! a skip table per AC Huffman table maps the next 13 bits to the whole (code, value) pairs
//! they hold: one lookup steps over several coefficients (a decoder that needs the values,
//! libjpeg-turbo's too, must take them one at a time). On the 12 MP no-thumbnail bench
//! photos that halves the entropy walk (16.1 against 33.0 ms one symbol at a time, one run
//! of `examples/decode_profile.rs`; 12 bits: 0.53 of the time, 14 bits: 0.48, 13: 0.49 with
//! half the cache of 14). That walk is still the whole cost, so for two threads the
//! entropy-coded data is split:
//!
//! * with restart markers, at the marker nearest the middle: the halves are independent;
//! * without, speculatively: the second thread starts at the middle bit of the data as if an
//!   MCU began there. Huffman codes resynchronise, so after a few MCUs its MCU boundaries
//!   are the true ones. The first thread decodes up to the split and on, and at each of its
//!   MCU starts compares its bit position with those the second thread recorded; an equal
//!   position is the seam, proven (from an MCU start at the same bit, both decode the same
//!   symbols). The second thread's DC values are differences from a predictor it did not
//!   know, so they are shifted per component by the first thread's predictor at the seam.
//!   No seam within the second thread's first MCUs: the first thread decodes everything
//!   itself (the result is the same, only slower).
//!
//! The second half runs on one long-lived decode thread (`worker.rs`), not a thread
//! spawned per photo: a new thread often starts on its parent's core and the halves share
//! it (seen in the benchmark next to its peer process: no two-thread gain at all).
//!
//! Anything unusual (progressive, arithmetic or 12-bit coding, CMYK, RGB-coded, several
//! scans, a Huffman error) returns `None` and the caller uses the full decoder, so broken
//! files behave exactly as before. Memory is bounded by the file size plus one `i16` per
//! block; the frame size is checked by the caller's limits before anything is allocated.

/// At most this many MCUs recorded by the speculative thread while the seam is sought.
const PROBE_MCUS: usize = 1024;
/// Below this much entropy-coded data a second thread costs more than it saves.
const MIN_PARALLEL_BYTES: usize = 256 * 1024;
/// Lookup width of the Huffman fast tables.
const FAST_BITS: u32 = 10;
/// Lookup width of the AC skip tables (several coefficients per lookup; 16 KiB a table).
const SKIP_BITS: u32 = 13;
/// Zero bytes after the unstuffed data: one block reads at most 64 * 32 bits past its start.
const PAD: usize = 512;

/// The photo at 1/8 scale, RGB8, and its full size.
pub struct Eighth {
    pub rgb: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub full: (u32, u32),
}

/// What the frame header says, enough for the caller's limits before decoding.
#[derive(Debug, Clone, Copy)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
}

mod markers;
#[cfg(test)]
mod tests;
mod worker;

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::Sender;
use markers::{parse, unstuff, Scan, SKIP_EOB};

pub fn frame_size(bytes: &[u8]) -> Option<FrameSize> {
    parse(bytes).map(|s| FrameSize { width: s.width, height: s.height })
}

#[inline(always)]
fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < (1 << (s - 1)) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}

/// A decoder over the unstuffed data: a 64-bit buffer of its bits, DC predictors.
///
/// The buffer keeps `n` valid bits, left-aligned; it is refilled (branch-free, whole bytes)
/// when fewer than 32 remain, enough for a code and its value. Keeping the bits in a
/// register rather than loading them at each symbol shortens the chain of dependent
/// instructions per symbol, which is what bounds the speed of this loop.
struct Walker<'a> {
    scan: &'a Scan,
    data: &'a [u8],
    /// End of real data, in bits; a walk further than 64 bytes past it is an error.
    end_bits: usize,
    /// The next byte to load.
    byte: usize,
    buf: u64,
    n: u32,
    pred: [i32; 3],
}

impl<'a> Walker<'a> {
    fn new(scan: &'a Scan, data: &'a [u8], end_bits: usize, pos: usize) -> Walker<'a> {
        let mut w = Walker { scan, data, end_bits, byte: 0, buf: 0, n: 0, pred: [0; 3] };
        w.seek(pos);
        w
    }

    /// The bit position of the next unread bit.
    #[inline(always)]
    fn pos(&self) -> usize {
        self.byte * 8 - self.n as usize
    }

    fn seek(&mut self, pos: usize) {
        self.byte = pos / 8;
        self.buf = 0;
        self.n = 0;
        self.refill();
        self.consume((pos % 8) as u32);
    }

    #[inline(always)]
    fn refill(&mut self) {
        let word: [u8; 8] = match self.data.get(self.byte..self.byte + 8) {
            Some(w) => w.try_into().unwrap_or([0; 8]),
            None => [0; 8],
        };
        self.buf |= u64::from_be_bytes(word) >> self.n;
        self.byte += ((63 - self.n) >> 3) as usize;
        self.n |= 56;
    }

    #[inline(always)]
    fn consume(&mut self, len: u32) {
        self.buf <<= len;
        self.n -= len;
    }

    /// Decode one MCU, writing its DC values (with predictors applied) to `out`.
    #[inline(always)]
    fn mcu(&mut self, out: &mut [i32]) -> Option<()> {
        self.mcu_with::<true>(out)
    }

    /// [`Walker::mcu`]; `SKIP`: step over AC coefficients with the multi-symbol skip
    /// tables, else one Huffman symbol at a time (the reference the tests compare with).
    #[inline(always)]
    fn mcu_with<const SKIP: bool>(&mut self, out: &mut [i32]) -> Option<()> {
        if self.pos() > self.end_bits + 8 * 64 {
            return None;
        }
        for (b, &c) in self.scan.block_comp.iter().enumerate() {
            let dct = &self.scan.dc_tables[c];
            let act = &self.scan.ac_tables[c];
            if self.n < 32 {
                self.refill();
            }
            let (len, s) = dct.decode(self.buf)?;
            let s = u32::from(s);
            if s > 16 {
                return None;
            }
            let v = if s == 0 { 0 } else { ((self.buf << len) >> (64 - s)) as u32 };
            self.consume(len + s);
            self.pred[c] = self.pred[c].wrapping_add(extend(v, s));
            out[b] = self.pred[c];
            let mut k = 1u32;
            while k < 64 {
                if self.n < 32 {
                    self.refill();
                }
                if SKIP {
                    // Several pairs at once, if they all stay inside this block (`k + adv`
                    // below 64: a pair past the block's end would belong to the next one).
                    let e = u32::from(act.skip[(self.buf >> (64 - SKIP_BITS)) as usize]);
                    let adv = (e >> 4) & 63;
                    if e != 0 && k + adv < 64 {
                        self.consume(e & 15);
                        k += adv;
                        if e & u32::from(SKIP_EOB) != 0 {
                            break;
                        }
                        continue;
                    }
                }
                let (len, rs) = act.decode(self.buf)?;
                let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
                self.consume(len + s);
                if s == 0 {
                    if r != 15 {
                        break;
                    }
                    k += 16;
                } else {
                    k += r + 1;
                }
            }
        }
        Some(())
    }

    fn restart(&mut self, at_byte: usize) {
        self.seek(at_byte * 8);
        self.pred = [0; 3];
    }
}

/// Decode a baseline JPEG at 1/8 scale; `None`: not one the lean decoder takes (use the full
/// decoder). `threads` is 1 or 2.
pub fn decode(bytes: &[u8], threads: usize) -> Option<Eighth> {
    decode_tuned(bytes, threads, MIN_PARALLEL_BYTES, 4 * PROBE_MCUS)
}

/// [`decode`] with the sizes below which one thread decodes (tests split small files).
fn decode_tuned(bytes: &[u8], threads: usize, min_bytes: usize, min_mcus: usize) -> Option<Eighth> {
    let scan = parse(bytes)?;
    let (data, restarts) = unstuff(&bytes[scan.data.clone()]);
    // shared with the decode thread, which may outlive this call by a few MCUs
    let (scan, data) = (Arc::new(scan), Arc::new(data));
    let real = data.len() - PAD;
    let bpm = scan.block_comp.len();
    let total = scan.mcux * scan.mcuy;
    let mut dc = vec![0i32; total.checked_mul(bpm)?];
    let two = threads >= 2 && real >= min_bytes && total >= min_mcus.max(2);
    if scan.restart_interval > 0 {
        let intervals = total.div_ceil(scan.restart_interval);
        if restarts.len() + 1 < intervals {
            return None; // missing restart markers: the full decoder copes
        }
        let starts: Arc<Vec<usize>> =
            Arc::new(std::iter::once(0).chain(restarts.iter().copied()).take(intervals).collect());
        let second = if two && intervals >= 2 {
            let mid = intervals / 2;
            let (scan2, data2, starts2) = (Arc::clone(&scan), Arc::clone(&data), Arc::clone(&starts));
            let len = dc.len() - mid * scan.restart_interval * bpm;
            worker::spawn(move || {
                let mut out = vec![0i32; len];
                intervals_walk(&scan2, &data2, &starts2, mid..intervals, &mut out).map(|()| out)
            })
            .map(|rx| (mid, rx))
        } else {
            None
        };
        match second {
            Some((mid, rx)) => {
                let (a, b) = dc.split_at_mut(mid * scan.restart_interval * bpm);
                intervals_walk(&scan, &data, &starts, 0..mid, a)?;
                b.copy_from_slice(&rx.recv().ok()??);
            }
            None => intervals_walk(&scan, &data, &starts, 0..intervals, &mut dc)?,
        }
    } else if two {
        speculative(&scan, &data, real, &mut dc)?;
    } else {
        let mut w = Walker::new(&scan, &data, real * 8, 0);
        for out in dc.chunks_exact_mut(bpm) {
            w.mcu(out)?;
        }
    }
    Some(to_rgb(&scan, &dc))
}

/// Walk the restart intervals `ivs` (each starting at its byte in `starts`) into `out`.
fn intervals_walk(scan: &Scan, data: &[u8], starts: &[usize], ivs: Range<usize>, out: &mut [i32]) -> Option<()> {
    let (ri, bpm, total) = (scan.restart_interval, scan.block_comp.len(), scan.mcux * scan.mcuy);
    let mut w = Walker::new(scan, data, (data.len() - PAD) * 8, 0);
    let first = ivs.start;
    for (iv, &at) in starts.iter().enumerate().take(ivs.end).skip(first) {
        w.restart(at);
        let m0 = iv * ri;
        let m1 = (m0 + ri).min(total);
        let base = (iv - first) * ri * bpm;
        for m in m0..m1 {
            let o = base + (m - m0) * bpm;
            w.mcu(&mut out[o..o + bpm])?;
        }
    }
    Some(())
}

/// Milliseconds of each stage of a 1-thread decode (markers, unstuffing, entropy walk,
/// the same walk one Huffman symbol at a time without the skip tables, colour
/// conversion), for `examples/decode_profile.rs`; `None` as [`decode`].
#[doc(hidden)]
pub fn stages(bytes: &[u8]) -> Option<[f64; 5]> {
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    let scan = parse(bytes)?;
    let parse_ms = ms(t);
    let t = std::time::Instant::now();
    let (data, _) = unstuff(&bytes[scan.data.clone()]);
    let unstuff_ms = ms(t);
    let bpm = scan.block_comp.len();
    let mut dc = vec![0i32; scan.mcux * scan.mcuy * bpm];
    let t = std::time::Instant::now();
    let mut w = Walker::new(&scan, &data, (data.len() - PAD) * 8, 0);
    for out in dc.chunks_exact_mut(bpm) {
        w.mcu_with::<false>(out)?;
    }
    let one_ms = ms(t);
    let t = std::time::Instant::now();
    let mut w = Walker::new(&scan, &data, (data.len() - PAD) * 8, 0);
    for out in dc.chunks_exact_mut(bpm) {
        w.mcu(out)?;
    }
    let walk_ms = ms(t);
    let t = std::time::Instant::now();
    let e = to_rgb(&scan, &dc);
    std::hint::black_box(e.rgb);
    Some([parse_ms, unstuff_ms, walk_ms, one_ms, ms(t)])
}

/// What the speculative thread hands over: per probed MCU, its start bit and predictors.
struct Probe {
    starts: Vec<usize>,
    preds: Vec<[i32; 3]>,
}

/// Two-thread decode without restart markers (see the module doc); `None` on a Huffman error.
fn speculative(scan: &Arc<Scan>, data: &Arc<Vec<u8>>, real: usize, dc: &mut [i32]) -> Option<()> {
    let bpm = scan.block_comp.len();
    let total = scan.mcux * scan.mcuy;
    let split = real * 8 / 2;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::bounded::<Probe>(1);
    let (scan2, data2, stop2) = (Arc::clone(scan), Arc::clone(data), Arc::clone(&stop));
    let Some(second) = worker::spawn(move || second_half(&scan2, &data2, real, split, &stop2, tx)) else {
        let mut w = Walker::new(scan, data, real * 8, 0);
        return dc.chunks_exact_mut(bpm).try_for_each(|out| w.mcu(out));
    };
    // however this returns, the decode thread stops at its next MCU
    let stop = StopOnDrop(stop);
    let mut w = Walker::new(scan, data, real * 8, 0);
    let mut m = 0;
    while m < total && w.pos() < split {
        w.mcu(&mut dc[m * bpm..(m + 1) * bpm])?;
        m += 1;
    }
    // Seek the seam among the probed MCU starts.
    let seam = rx.recv().ok().and_then(|probe| {
        let mut j = 0;
        while m < total {
            while j < probe.starts.len() && probe.starts[j] < w.pos() {
                j += 1;
            }
            if j == probe.starts.len() {
                return None;
            }
            if probe.starts[j] == w.pos() {
                return Some((m, j, probe.preds[j]));
            }
            w.mcu(&mut dc[m * bpm..(m + 1) * bpm])?;
            m += 1;
        }
        None
    });
    let Some((k, j, pred2)) = seam else {
        drop(stop); // the decode thread stops at its next MCU; nothing waits for it
        tracing::debug!(mcu = m, "no seam found; decoding the rest on one thread");
        while m < total {
            w.mcu(&mut dc[m * bpm..(m + 1) * bpm])?;
            m += 1;
        }
        return Some(());
    };
    let out = second.recv().ok()?;
    let offset: Vec<i32> = (0..scan.comps.len()).map(|c| w.pred[c].wrapping_sub(pred2[c])).collect();
    let have = out.len() / bpm;
    let take = (total - k).min(have.saturating_sub(j));
    for (i, src) in out[j * bpm..(j + take) * bpm].chunks_exact(bpm).enumerate() {
        let dst = &mut dc[(k + i) * bpm..(k + i + 1) * bpm];
        for (b, (d, &v)) in dst.iter_mut().zip(src).enumerate() {
            let c = scan.block_comp[b];
            *d = v.wrapping_add(offset[c]);
        }
    }
    if k + take < total {
        // the second thread stopped early (an error near the end): this one, still at
        // the seam, decodes the rest itself
        for m in k..total {
            w.mcu(&mut dc[m * bpm..(m + 1) * bpm])?;
        }
    }
    Some(())
}

/// Sets its flag when dropped: the decode thread's cue that its half is no longer wanted.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The speculative second half, on the decode thread: from the middle bit, record the
/// first MCU starts and predictors (the probe, sent as soon as it is full), then decode on
/// to the end unless told to stop.
fn second_half(scan: &Scan, data: &[u8], real: usize, split: usize, stop: &AtomicBool, tx: Sender<Probe>) -> Vec<i32> {
    let bpm = scan.block_comp.len();
    let total = scan.mcux * scan.mcuy;
    let mut w = Walker::new(scan, data, real * 8, split);
    let mut out = Vec::with_capacity((total / 2 + PROBE_MCUS) * bpm);
    let mut probe = Probe { starts: Vec::with_capacity(PROBE_MCUS), preds: Vec::with_capacity(PROBE_MCUS) };
    let mut block = [0i32; 10];
    while probe.starts.len() < PROBE_MCUS && w.pos() < real * 8 {
        probe.starts.push(w.pos());
        probe.preds.push(w.pred);
        if w.mcu(&mut block[..bpm]).is_none() {
            // garbage before the resynchronisation: start again a little later
            out.clear();
            probe.starts.clear();
            probe.preds.clear();
            let again = probe_restart(w.pos());
            if again >= real * 8 {
                return Vec::new();
            }
            w.seek(again);
            w.pred = [0; 3];
            continue;
        }
        out.extend_from_slice(&block[..bpm]);
    }
    if tx.send(probe).is_err() {
        return Vec::new();
    }
    // Decode to the end of the data (at most the MCUs that can remain).
    let mut n = PROBE_MCUS;
    while n < total && w.pos() < real * 8 {
        if stop.load(Ordering::Relaxed) || w.mcu(&mut block[..bpm]).is_none() {
            break;
        }
        out.extend_from_slice(&block[..bpm]);
        n += 1;
    }
    out
}

/// Where the speculative thread tries again after a Huffman error: the next byte.
fn probe_restart(pos: usize) -> usize {
    (pos / 8 + 1) * 8
}

/// DC values (MCU order) to the RGB image at 1/8 scale: `128 + dc * q0 / 8` per block,
/// chroma replicated, JFIF YCbCr to RGB.
fn to_rgb(scan: &Scan, dc: &[i32]) -> Eighth {
    let (w, h) = (scan.width.div_ceil(8) as usize, scan.height.div_ceil(8) as usize);
    let hmax = scan.comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = scan.comps.iter().map(|c| c.v).max().unwrap_or(1);
    let bpm = scan.block_comp.len();
    // Per component: the offset in `dc` of the block under output column x and row y.
    let mut first = 0;
    let mut cols: Vec<Vec<usize>> = Vec::new();
    let mut rows: Vec<Vec<usize>> = Vec::new();
    for c in &scan.comps {
        cols.push((0..w).map(|x| x * c.h / hmax).map(|bx| (bx / c.h) * bpm + bx % c.h).collect());
        rows.push(
            (0..h).map(|y| y * c.v / vmax).map(|by| (by / c.v) * scan.mcux * bpm + first + (by % c.v) * c.h).collect(),
        );
        first += c.h * c.v;
    }
    let level = |ci: usize, x: usize, y: usize| -> i32 {
        let v = i64::from(dc.get(rows[ci][y] + cols[ci][x]).copied().unwrap_or(0)) * i64::from(scan.q0[ci]);
        (128 + ((v + 4) >> 3)).clamp(0, 255) as i32
    };
    let mut rgb = vec![0u8; w * h * 3];
    for (y, row) in rgb.chunks_exact_mut(w * 3).enumerate() {
        for (x, p) in row.chunks_exact_mut(3).enumerate() {
            let yv = level(0, x, y);
            if scan.comps.len() == 1 {
                p.fill(yv as u8);
                continue;
            }
            let cb = level(1, x, y) - 128;
            let cr = level(2, x, y) - 128;
            // 16-bit fixed point of the JFIF equations
            let r = yv + ((91881 * cr + 32768) >> 16);
            let g = yv - ((22554 * cb + 46802 * cr - 32768) >> 16);
            let b = yv + ((116130 * cb + 32768) >> 16);
            p[0] = r.clamp(0, 255) as u8;
            p[1] = g.clamp(0, 255) as u8;
            p[2] = b.clamp(0, 255) as u8;
        }
    }
    Eighth { rgb, width: w as u32, height: h as u32, full: (scan.width, scan.height) }
}
