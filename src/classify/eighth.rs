//! The 1/8-scale decode of a baseline JPEG from its DC coefficients alone, on one or two
//! cores: the classifier's path for a photo without a usable EXIF thumbnail.
//!
//! At 1/8 scale every 8x8 block becomes one pixel, the block's mean, which is its DC
//! coefficient times the DC quantiser. So the AC coefficients need only be *skipped*: each
//! Huffman symbol is looked up and its bits stepped over, nothing is stored, dequantised or
//! transformed. That entropy walk is the whole cost (libjpeg-turbo's own 1/8 decode spends
//! nearly all its time there too), so for two threads the entropy-coded data is split:
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
//! Anything unusual (progressive, arithmetic or 12-bit coding, CMYK, RGB-coded, several
//! scans, a Huffman error) returns `None` and the caller uses the full decoder, so broken
//! files behave exactly as before. Memory is bounded by the file size plus one `i16` per
//! block; the frame size is checked by the caller's limits before anything is allocated.

use std::ops::Range;

/// At most this many MCUs recorded by the speculative thread while the seam is sought.
const PROBE_MCUS: usize = 1024;
/// Below this much entropy-coded data a second thread costs more than it saves.
const MIN_PARALLEL_BYTES: usize = 256 * 1024;
/// Lookup width of the Huffman fast tables.
const FAST_BITS: u32 = 10;
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

#[derive(Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    td: usize,
    ta: usize,
}

struct Huffman {
    /// `(code length << 8) | symbol` for codes up to FAST_BITS long; 0: longer code.
    fast: Vec<u16>,
    /// Canonical decoding for longer codes: max code of each length (exclusive, left-aligned
    /// to 16 bits), the value offset into `symbols`.
    maxcode: [u32; 18],
    valoff: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
        let mut fast = vec![0u16; 1 << FAST_BITS];
        let mut maxcode = [0u32; 18];
        let mut valoff = [0i32; 17];
        let mut code: u32 = 0;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = usize::from(counts[len as usize - 1]);
            valoff[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                let sym = *symbols.get(k)?;
                if code >= (1 << len) {
                    return None; // over-subscribed table
                }
                if len <= FAST_BITS {
                    let shift = FAST_BITS - len;
                    let first = (code << shift) as usize;
                    for e in &mut fast[first..first + (1 << shift)] {
                        *e = ((len as u16) << 8) | u16::from(sym);
                    }
                }
                code += 1;
                k += 1;
            }
            maxcode[len as usize] = code << (16 - len);
            code <<= 1;
        }
        maxcode[17] = u32::MAX;
        Some(Huffman { fast, maxcode, valoff, symbols: symbols[..k].to_vec() })
    }

    /// Decode one symbol from left-aligned `bits`; `(length, symbol)`.
    #[inline(always)]
    fn decode(&self, bits: u64) -> Option<(u32, u8)> {
        let e = self.fast[(bits >> (64 - FAST_BITS)) as usize];
        if e != 0 {
            return Some((u32::from(e >> 8), e as u8));
        }
        let top = (bits >> 48) as u32;
        let mut len = FAST_BITS + 1;
        while len <= 16 && top >= self.maxcode[len as usize] {
            len += 1;
        }
        if len > 16 {
            return None;
        }
        let code = (top >> (16 - len)) as i32;
        let idx = code + self.valoff[len as usize];
        self.symbols.get(usize::try_from(idx).ok()?).map(|&s| (len, s))
    }
}

/// Everything the entropy walk needs, from the markers.
struct Scan {
    width: u32,
    height: u32,
    comps: Vec<Component>,
    /// DC quantiser of each component.
    q0: Vec<i32>,
    dc_tables: Vec<Huffman>,
    ac_tables: Vec<Huffman>,
    /// Per block of an MCU, in order: which component (tables) it belongs to.
    block_comp: Vec<usize>,
    mcux: usize,
    mcuy: usize,
    restart_interval: usize,
    /// The entropy-coded data of the scan, in `bytes`.
    data: Range<usize>,
}

/// Read the frame size of a JPEG the lean decoder would take, or `None`.
pub fn frame_size(bytes: &[u8]) -> Option<FrameSize> {
    parse(bytes).map(|s| FrameSize { width: s.width, height: s.height })
}

fn be16(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])))
}

fn parse(bytes: &[u8]) -> Option<Scan> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut q = [[0i32; 1]; 4];
    let mut have_q = [false; 4];
    let mut dc: [Option<Huffman>; 4] = [None, None, None, None];
    let mut ac: [Option<Huffman>; 4] = [None, None, None, None];
    let mut frame: Option<(u32, u32, Vec<Component>)> = None;
    let mut restart_interval = 0usize;
    let mut adobe_transform: Option<u8> = None;
    let mut i = 2;
    loop {
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(i + 1)?;
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = be16(bytes, i + 2)?;
        let body = bytes.get(i + 4..i + 2 + len.max(2))?;
        match marker {
            0xC0 | 0xC1 => {
                // baseline / extended sequential, Huffman: 8-bit samples only
                if frame.is_some() || body.len() < 6 || body[0] != 8 {
                    return None;
                }
                let height = be16(body, 1)? as u32;
                let width = be16(body, 3)? as u32;
                let n = usize::from(body[5]);
                if !(n == 1 || n == 3) || body.len() < 6 + 3 * n || width == 0 || height == 0 {
                    return None;
                }
                let mut comps = Vec::with_capacity(n);
                for c in 0..n {
                    let b = &body[6 + 3 * c..9 + 3 * c];
                    let (h, v, tq) = (usize::from(b[1] >> 4), usize::from(b[1] & 15), usize::from(b[2]));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
                        return None;
                    }
                    comps.push(Component { id: b[0], h, v, tq, td: 0, ta: 0 });
                }
                if n == 1 {
                    // a lone component is coded block by block whatever its factors say
                    comps[0].h = 1;
                    comps[0].v = 1;
                }
                frame = Some((width, height, comps));
            }
            0xC2..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => return None,
            0xC4 => {
                let mut p = 0;
                while p < body.len() {
                    let tc_th = body[p];
                    let counts: [u8; 16] = body.get(p + 1..p + 17)?.try_into().ok()?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = body.get(p + 17..p + 17 + total)?;
                    let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
                    if class > 1 || id > 3 {
                        return None;
                    }
                    let table = Huffman::new(&counts, symbols)?;
                    if class == 0 {
                        dc[id] = Some(table);
                    } else {
                        ac[id] = Some(table);
                    }
                    p += 17 + total;
                }
            }
            0xDB => {
                let mut p = 0;
                while p < body.len() {
                    let (pq, id) = (body[p] >> 4, usize::from(body[p] & 15));
                    if id > 3 || pq > 1 {
                        return None;
                    }
                    q[id][0] = if pq == 0 { i32::from(*body.get(p + 1)?) } else { be16(body, p + 1)? as i32 };
                    have_q[id] = true;
                    p += 1 + 64 * (1 + usize::from(pq));
                }
            }
            0xDD => restart_interval = be16(body, 0)?,
            0xEE if body.len() >= 12 && body.starts_with(b"Adobe") => adobe_transform = Some(body[11]),
            0xDA => {
                let (width, height, mut comps) = frame?;
                let n = usize::from(*body.first()?);
                if n != comps.len() || body.len() < 1 + 2 * n + 3 {
                    return None; // not one interleaved scan of every component
                }
                for k in 0..n {
                    let (id, tables) = (body[1 + 2 * k], body[2 + 2 * k]);
                    let c = comps.get_mut(k).filter(|c| c.id == id)?;
                    c.td = usize::from(tables >> 4);
                    c.ta = usize::from(tables & 15);
                }
                let spectral = &body[1 + 2 * n..];
                if spectral[0] != 0 || spectral[1] != 63 || spectral[2] != 0 {
                    return None;
                }
                if n == 3 && (adobe_transform == Some(0) || comps.iter().map(|c| c.id).eq(*b"RGB")) {
                    return None; // RGB-coded: the full decoder knows
                }
                let hmax = comps.iter().map(|c| c.h).max()?;
                let vmax = comps.iter().map(|c| c.v).max()?;
                let mcux = (width as usize).div_ceil(8 * hmax);
                let mcuy = (height as usize).div_ceil(8 * vmax);
                let mut block_comp = Vec::new();
                let (mut q0, mut dc_tables, mut ac_tables) = (Vec::new(), Vec::new(), Vec::new());
                for (ci, c) in comps.iter().enumerate() {
                    if !have_q[c.tq] || c.td > 3 || c.ta > 3 {
                        return None;
                    }
                    q0.push(q[c.tq][0]);
                    let (d, a) = (dc[c.td].as_ref()?, ac[c.ta].as_ref()?);
                    dc_tables.push(d.clone());
                    ac_tables.push(a.clone());
                    block_comp.extend(std::iter::repeat_n(ci, c.h * c.v));
                }
                if block_comp.len() > 10 {
                    return None; // the standard's limit on blocks per MCU
                }
                let start = i + 2 + len;
                return Some(Scan {
                    width,
                    height,
                    comps,
                    q0,
                    dc_tables,
                    ac_tables,
                    block_comp,
                    mcux,
                    mcuy,
                    restart_interval,
                    data: start..bytes.len(),
                });
            }
            0xD9 => return None,
            _ => {}
        }
        i += 2 + len;
    }
}

impl Clone for Huffman {
    fn clone(&self) -> Self {
        Huffman { fast: self.fast.clone(), maxcode: self.maxcode, valoff: self.valoff, symbols: self.symbols.clone() }
    }
}

/// The entropy-coded data with byte stuffing and markers removed, zero-padded, and the
/// byte offsets where each restart interval begins.
fn unstuff(bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::with_capacity(bytes.len() + PAD);
    let mut restarts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let Some(ff) = memchr::memchr(0xFF, &bytes[i..]) else {
            out.extend_from_slice(&bytes[i..]);
            break;
        };
        out.extend_from_slice(&bytes[i..i + ff]);
        i += ff;
        match bytes.get(i + 1) {
            Some(0x00) => {
                out.push(0xFF);
                i += 2;
            }
            Some(0xD0..=0xD7) => {
                restarts.push(out.len());
                i += 2;
            }
            Some(0xFF) => i += 1,
            _ => break, // EOI or another marker: the scan ends
        }
    }
    out.resize(out.len() + PAD, 0);
    (out, restarts)
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
            let mut k = 1;
            while k < 64 {
                if self.n < 32 {
                    self.refill();
                }
                let (len, rs) = act.decode(self.buf)?;
                let (r, s) = (usize::from(rs >> 4), u32::from(rs & 15));
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
    let real = data.len() - PAD;
    let bpm = scan.block_comp.len();
    let total = scan.mcux * scan.mcuy;
    let mut dc = vec![0i32; total.checked_mul(bpm)?];
    let walker = |pos: usize| Walker::new(&scan, &data, real * 8, pos);
    let two = threads >= 2 && real >= min_bytes && total >= min_mcus.max(2);
    if scan.restart_interval > 0 {
        let ri = scan.restart_interval;
        let intervals = total.div_ceil(ri);
        if restarts.len() + 1 < intervals {
            return None; // missing restart markers: the full decoder copes
        }
        let starts: Vec<usize> = std::iter::once(0).chain(restarts.iter().copied()).take(intervals).collect();
        let run = |first: usize, last: usize, out: &mut [i32]| -> Option<()> {
            let mut w = walker(0);
            for iv in first..last {
                w.restart(starts[iv]);
                let m0 = iv * ri;
                let m1 = (m0 + ri).min(total);
                let base = (iv - first) * ri * bpm;
                for m in m0..m1 {
                    let o = base + (m - m0) * bpm;
                    w.mcu(&mut out[o..o + bpm])?;
                }
            }
            Some(())
        };
        if two && intervals >= 2 {
            let mid = intervals / 2;
            let (a, b) = dc.split_at_mut(mid * ri * bpm);
            let ok = std::thread::scope(|s| {
                let second = s.spawn(|| run(mid, intervals, b));
                let first = run(0, mid, a);
                first.is_some() && second.join().ok().flatten().is_some()
            });
            ok.then_some(())?;
        } else {
            run(0, intervals, &mut dc)?;
        }
    } else if two {
        speculative(&scan, &data, real, &mut dc)?;
    } else {
        let mut w = walker(0);
        for out in dc.chunks_exact_mut(bpm) {
            w.mcu(out)?;
        }
    }
    Some(to_rgb(&scan, &dc))
}

/// Milliseconds of each stage of a 1-thread decode (markers, unstuffing, entropy walk,
/// colour conversion), for `examples/decode_profile.rs`; `None` as [`decode`].
#[doc(hidden)]
pub fn stages(bytes: &[u8]) -> Option<[f64; 4]> {
    let ms = |t: std::time::Instant| t.elapsed().as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    let scan = parse(bytes)?;
    let parse_ms = ms(t);
    let t = std::time::Instant::now();
    let (data, _) = unstuff(&bytes[scan.data.clone()]);
    let unstuff_ms = ms(t);
    let t = std::time::Instant::now();
    let bpm = scan.block_comp.len();
    let mut dc = vec![0i32; scan.mcux * scan.mcuy * bpm];
    let mut w = Walker::new(&scan, &data, (data.len() - PAD) * 8, 0);
    for out in dc.chunks_exact_mut(bpm) {
        w.mcu(out)?;
    }
    let walk_ms = ms(t);
    let t = std::time::Instant::now();
    let e = to_rgb(&scan, &dc);
    std::hint::black_box(e.rgb);
    Some([parse_ms, unstuff_ms, walk_ms, ms(t)])
}

/// What the speculative thread hands over: per probed MCU, its start bit and predictors.
struct Probe {
    starts: Vec<usize>,
    preds: Vec<[i32; 3]>,
}

/// Two-thread decode without restart markers (see the module doc); `None` on a Huffman error.
fn speculative(scan: &Scan, data: &[u8], real: usize, dc: &mut [i32]) -> Option<()> {
    let bpm = scan.block_comp.len();
    let total = scan.mcux * scan.mcuy;
    let split = real * 8 / 2;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (tx, rx) = crossbeam_channel::bounded::<Probe>(1);
    std::thread::scope(|s| {
        let stop = &stop;
        let second = s.spawn(move || -> Vec<i32> {
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
                if stop.load(std::sync::atomic::Ordering::Relaxed) || w.mcu(&mut block[..bpm]).is_none() {
                    break;
                }
                out.extend_from_slice(&block[..bpm]);
                n += 1;
            }
            out
        });
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
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = second.join();
            tracing::debug!(mcu = m, "no seam found; decoding the rest on one thread");
            while m < total {
                w.mcu(&mut dc[m * bpm..(m + 1) * bpm])?;
                m += 1;
            }
            return Some(());
        };
        let out = second.join().ok()?;
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
    })
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

#[cfg(test)]
mod tests {
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
                (((x + y) % 256) as u32 / 2 + n).min(255) as u8,
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

    #[test]
    fn every_sampling_and_restart_markers_split_exactly() {
        // Files from another encoder (jpeg-encoder), every chroma layout, with and without
        // restart markers. Known problem: the lean decoder declines jpeg-encoder's 4:1:1
        // files (seen 2026-12-01, cause not yet found; the list is printed); a declined file
        // takes jpeg-decoder's path, so the decode still succeeds. Whatever the lean decoder
        // takes, it must decode exactly, split or not.
        use jpeg_encoder::SamplingFactor as S;
        let img = noisy(720, 536, 11);
        let (mut taken, mut declined) = (Vec::new(), Vec::new());
        for sampling in [S::R_4_4_4, S::R_4_2_2, S::R_4_2_0, S::R_4_1_1, S::R_4_4_0] {
            for restart in [0u16, 1, 7, 64] {
                let bytes = encoded(&img, sampling, restart);
                let (r, w, h) = reference(&bytes);
                let Some(one) = decode_tuned(&bytes, 1, 0, 0) else {
                    declined.push(format!("{sampling:?}/{restart}"));
                    let (_, fw, fh, _) =
                        super::super::decode::decode_jpeg_fast(&bytes, 60, 2).expect("fallback decodes");
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
}
