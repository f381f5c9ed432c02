//! The markers of a baseline JPEG that the lean 1/8 decoder needs: frame, quantisers, Huffman
//! tables, restart interval, and the entropy-coded data with byte stuffing removed.

use std::ops::Range;

use super::{FAST_BITS, PAD, SKIP_BITS};

#[derive(Clone, Copy, Default)]
pub(super) struct Component {
    pub(super) id: u8,
    pub(super) h: usize,
    pub(super) v: usize,
    pub(super) tq: usize,
    pub(super) td: usize,
    pub(super) ta: usize,
}

pub(super) struct Huffman {
    /// `(code length << 8) | symbol` for codes up to FAST_BITS long; 0: longer code.
    pub(super) fast: Vec<u16>,
    /// Canonical decoding for longer codes: max code of each length (exclusive, left-aligned
    /// to 16 bits), the value offset into `symbols`.
    pub(super) maxcode: [u32; 18],
    pub(super) valoff: [i32; 17],
    pub(super) symbols: Vec<u8>,
    /// For AC skipping: what the next SKIP_BITS bits hold as whole (code, value) pairs, see
    /// [`Huffman::skip_entry`]; 0: not even one pair fits (take the one-symbol path).
    pub(super) skip: Vec<u16>,
}

/// A skip entry's fields: bits taken (low 4 bits), coefficients advanced (next 6), and
/// whether its last symbol is an end-of-block (the top bit).
pub(super) const SKIP_EOB: u16 = 1 << 15;

impl Huffman {
    /// A table from a DHT's counts and symbols; `skip`: also the AC skip table.
    pub(super) fn new(counts: &[u8; 16], symbols: &[u8], skip: bool) -> Option<Huffman> {
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
        let mut h = Huffman { fast, maxcode, valoff, symbols: symbols[..k].to_vec(), skip: Vec::new() };
        if skip {
            h.skip = (0..1u64 << SKIP_BITS).map(|p| h.skip_entry(p)).collect();
        }
        Some(h)
    }

    /// The AC (run, size) pairs that the `SKIP_BITS`-bit pattern `p` holds whole, codes and
    /// value bits both, up to and including an end-of-block: bits taken, coefficients
    /// advanced (a zero run of 16 counts 16, any other pair run + 1), end-of-block reached.
    /// One lookup then steps over several coefficients; the caller takes an entry only if
    /// it stays inside the block, so a pair of the next block is never taken.
    fn skip_entry(&self, p: u64) -> u16 {
        let (mut used, mut adv) = (0u32, 0u32);
        while used < SKIP_BITS {
            // left-aligned, zeros past the pattern: a code found within `rem` bits is real
            let rem = SKIP_BITS - used;
            let Some((len, rs)) = self.decode(p << (64 - rem)) else { break };
            let s = u32::from(rs & 15);
            if len + s > rem {
                break;
            }
            let r = u32::from(rs >> 4);
            if s == 0 && r != 15 {
                return (used + len) as u16 | (adv as u16) << 4 | SKIP_EOB;
            }
            used += len + s;
            adv += if s == 0 { 16 } else { r + 1 };
            if adv >= 64 {
                return 0;
            }
        }
        used as u16 | (adv as u16) << 4
    }

    /// Decode one symbol from left-aligned `bits`; `(length, symbol)`.
    #[inline(always)]
    pub(super) fn decode(&self, bits: u64) -> Option<(u32, u8)> {
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
pub(super) struct Scan {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) comps: Vec<Component>,
    /// DC quantiser of each component.
    pub(super) q0: Vec<i32>,
    pub(super) dc_tables: Vec<Huffman>,
    pub(super) ac_tables: Vec<Huffman>,
    /// Per block of an MCU, in order: which component (tables) it belongs to.
    pub(super) block_comp: Vec<usize>,
    pub(super) mcux: usize,
    pub(super) mcuy: usize,
    pub(super) restart_interval: usize,
    /// The entropy-coded data of the scan, in `bytes`.
    pub(super) data: Range<usize>,
}

/// Read the frame size of a JPEG the lean decoder would take, or `None`.
pub(super) fn be16(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?])))
}

/// What the markers before the scan have set so far.
#[derive(Default)]
struct Tables {
    /// DC quantiser of each table slot, and whether it was defined.
    q: [Option<i32>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    frame: Option<(u32, u32, Vec<Component>)>,
    restart_interval: usize,
    adobe_transform: Option<u8>,
}

pub(super) fn parse(bytes: &[u8]) -> Option<Scan> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut t = Tables::default();
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
            0xC0 | 0xC1 => t.frame(body)?,
            0xC2..=0xCF if marker != 0xC4 && marker != 0xC8 && marker != 0xCC => return None,
            0xC4 => t.huffman(body)?,
            0xDB => t.quantisers(body)?,
            0xDD => t.restart_interval = be16(body, 0)?,
            0xEE if body.len() >= 12 && body.starts_with(b"Adobe") => t.adobe_transform = Some(body[11]),
            0xDA => return t.scan(body, i + 2 + len..bytes.len()),
            0xD9 => return None,
            _ => {}
        }
        i += 2 + len;
    }
}

impl Tables {
    /// SOF0/SOF1: baseline or extended sequential, Huffman; 8-bit samples only.
    fn frame(&mut self, body: &[u8]) -> Option<()> {
        if self.frame.is_some() || body.len() < 6 || body[0] != 8 {
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
        self.frame = Some((width, height, comps));
        Some(())
    }

    /// DHT: one or more Huffman tables.
    fn huffman(&mut self, body: &[u8]) -> Option<()> {
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
            let table = Huffman::new(&counts, symbols, class == 1)?;
            if class == 0 {
                self.dc[id] = Some(table);
            } else {
                self.ac[id] = Some(table);
            }
            p += 17 + total;
        }
        Some(())
    }

    /// DQT: only each table's DC quantiser is kept.
    fn quantisers(&mut self, body: &[u8]) -> Option<()> {
        let mut p = 0;
        while p < body.len() {
            let (pq, id) = (body[p] >> 4, usize::from(body[p] & 15));
            if id > 3 || pq > 1 {
                return None;
            }
            self.q[id] = Some(if pq == 0 { i32::from(*body.get(p + 1)?) } else { be16(body, p + 1)? as i32 });
            p += 1 + 64 * (1 + usize::from(pq));
        }
        Some(())
    }

    /// SOS: one interleaved scan of every component, DC and AC together, or `None`.
    fn scan(self, body: &[u8], data: Range<usize>) -> Option<Scan> {
        let (width, height, mut comps) = self.frame?;
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
        if n == 3 && (self.adobe_transform == Some(0) || comps.iter().map(|c| c.id).eq(*b"RGB")) {
            return None; // RGB-coded: the full decoder knows
        }
        let hmax = comps.iter().map(|c| c.h).max()?;
        let vmax = comps.iter().map(|c| c.v).max()?;
        let mcux = (width as usize).div_ceil(8 * hmax);
        let mcuy = (height as usize).div_ceil(8 * vmax);
        let mut block_comp = Vec::new();
        let (mut q0, mut dc_tables, mut ac_tables) = (Vec::new(), Vec::new(), Vec::new());
        for (ci, c) in comps.iter().enumerate() {
            if c.td > 3 || c.ta > 3 {
                return None;
            }
            q0.push(self.q[c.tq]?);
            dc_tables.push(self.dc[c.td].clone()?);
            ac_tables.push(self.ac[c.ta].clone()?);
            block_comp.extend(std::iter::repeat_n(ci, c.h * c.v));
        }
        if block_comp.len() > 10 {
            return None; // the standard's limit on blocks per MCU
        }
        let restart_interval = self.restart_interval;
        Some(Scan { width, height, comps, q0, dc_tables, ac_tables, block_comp, mcux, mcuy, restart_interval, data })
    }
}

impl Clone for Huffman {
    fn clone(&self) -> Self {
        Huffman {
            fast: self.fast.clone(),
            maxcode: self.maxcode,
            valoff: self.valoff,
            symbols: self.symbols.clone(),
            skip: self.skip.clone(),
        }
    }
}

/// The entropy-coded data with byte stuffing and markers removed, zero-padded, and the
/// byte offsets where each restart interval begins.
pub(super) fn unstuff(bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
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
