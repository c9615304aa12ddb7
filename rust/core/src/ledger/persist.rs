//! Versioned, checksummed byte state of a ledger.
//!
//! Layout of version 2 (little endian): magic `SMLEDGER`, format version (u32), n (u32), key
//! words (u32), each player's K_i (n u32), gamma (f64), day (u64), whether every group is
//! tracked (u8), supertypes (sum K_i f64, player by player), marginal counts (sum K_i u64),
//! the number of distinct profiles seen (u64) and each profile's packed key (words u64, the
//! layout of [`super::key::KeyLayout`]) and count J(d) (u64) in increasing key order; finally
//! a CRC-32 of everything before it.
//!
//! Version 1 (one K shared by all players, at most 64 players and 256 types) had n (u32),
//! K (u32) and key words (u32) in place of n, words and the K_i, and keys packed with
//! ceil(log2 max(K, 2)) bits per player; it is still read (and saved again as version 2).
//!
//! The profile counts J(d) determine everything else: block counts, the players' tracked groups,
//! their per-type records and heaps are derived state, rebuilt on load. Loading checks the checksum first and
//! then the structure, so a truncated or corrupted state is an error, never a silently wrong
//! ledger; the bytes are canonical, so a restored ledger saves to the same bytes.

use super::{hash_key, BidLedger, CountStore, Inner, KeyLayout, LedgerImpl};
use crate::error::{CoreError, CoreResult};
use crate::window::check_gamma;

const MAGIC: &[u8; 8] = b"SMLEDGER";
const VERSION: u32 = 2;

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    pub(super) fn take(&mut self, len: usize, what: &str) -> CoreResult<&'a [u8]> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(CoreError::CorruptState(format!(
                "truncated while reading {what} at byte {}",
                self.pos
            ))),
        }
    }
    pub(super) fn u32(&mut self, what: &str) -> CoreResult<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    pub(super) fn u64(&mut self, what: &str) -> CoreResult<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    pub(super) fn f64(&mut self, what: &str) -> CoreResult<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }
}

fn corrupt(msg: impl Into<String>) -> CoreError {
    CoreError::CorruptState(msg.into())
}

impl<const W: usize, C: CountStore> LedgerImpl<W, C> {
    fn write_profiles(&self, buf: &mut Vec<u8>) {
        let entries = self.joint_entries();
        buf.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        let words = self.layout.words();
        for (key, count) in entries {
            // exactly the layout's words: the key type's padding words are always zero
            for w in &key[..words] {
                buf.extend_from_slice(&w.to_le_bytes());
            }
            buf.extend_from_slice(&count.to_le_bytes());
        }
    }

    /// Rebuilds every table from the stored profiles (`next` fills the digits of the next one
    /// and returns its count; profiles arrive distinct) and checks them against the stored
    /// marginal counts.
    fn restore(
        &mut self,
        reader: &mut Reader<'_>,
        next: &mut dyn FnMut(&mut Reader<'_>, &mut [u32]) -> CoreResult<u64>,
        marginal: &[u64],
        day: u64,
        complete: bool,
    ) -> CoreResult<()> {
        let n = self.n;
        let profiles = reader.u64("the number of profiles")?;
        if profiles > day {
            return Err(corrupt(format!(
                "{profiles} distinct profiles for {day} days"
            )));
        }
        let mut total = 0u64;
        let mut digits = vec![0u32; n];
        for _ in 0..profiles {
            let count = next(reader, &mut digits)?;
            let key: [u64; W] = self.layout.pack(&digits);
            total = total
                .checked_add(count)
                .ok_or_else(|| corrupt("counts overflow"))?;
            let (_, inserted) = self.joint.add(&key, hash_key(&key), count);
            if !inserted {
                return Err(corrupt("a profile is listed twice"));
            }
            self.blocks.add(|i| digits[i] as usize, count);
            for (i, &t) in digits.iter().enumerate() {
                self.marginal[self.offsets[i] + t as usize] += count;
            }
        }
        if total != day {
            return Err(corrupt(format!(
                "profile counts add up to {total} days, not {day}"
            )));
        }
        if self.marginal_counts() != marginal {
            return Err(corrupt("marginal counts disagree with the profile counts"));
        }
        self.day = day;
        if complete {
            self.ensure_complete();
        } else {
            // track the groups that can fire from the next day on, as recording would have
            let bound = super::band_floor(day.max(1), self.gamma);
            self.keep_floor = bound;
            let mut counts = Vec::new();
            for i in 0..n {
                let totals = self.group_totals(i);
                for slot in totals.iter().filter(|s| s.count as f64 >= bound) {
                    self.shared().read_back(&slot.key, i, &mut counts);
                    self.players[i].track(&slot.key, hash_key(&slot.key), &counts);
                }
            }
            self.live = self.players.iter().any(|p| p.heap.top().is_some());
        }
        Ok(())
    }
}

/// Digit `player` of a version-1 key (uniform `bits` per player, `64 / bits` per word).
fn v1_digit(key: &[u64], player: usize, bits: u32) -> u64 {
    let per_word = 64 / bits as usize;
    let shift = (player % per_word) as u32 * bits;
    (key[player / per_word] >> shift) & ((1u64 << bits) - 1)
}

impl BidLedger {
    /// The ledger's complete state as versioned, checksummed bytes (format version 2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        let n = self.n_players();
        buf.extend_from_slice(&(n as u32).to_le_bytes());
        let words = dispatch!(&self.inner, l => l.layout.words());
        buf.extend_from_slice(&(words as u32).to_le_bytes());
        for &k in self.type_counts() {
            buf.extend_from_slice(&(k as u32).to_le_bytes());
        }
        buf.extend_from_slice(&self.gamma().to_bits().to_le_bytes());
        buf.extend_from_slice(&self.day().to_le_bytes());
        let complete = dispatch!(&self.inner, l => l.complete);
        buf.push(complete as u8);
        for p in self.supertypes() {
            buf.extend_from_slice(&p.to_bits().to_le_bytes());
        }
        for c in self.marginal_counts() {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        dispatch!(&self.inner, l => l.write_profiles(&mut buf));
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        buf
    }

    /// Restores a ledger from [`BidLedger::to_bytes`] (format version 2, or version 1 of
    /// earlier releases); any damage is a `CorruptState` error.
    pub fn from_bytes(bytes: &[u8]) -> CoreResult<Self> {
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt("not a stochmech ledger state (bad magic bytes)"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().expect("4 bytes"));
        let mut reader = Reader {
            bytes: body,
            pos: MAGIC.len(),
        };
        let version = reader.u32("the format version")?;
        if version != 1 && version != VERSION {
            return Err(corrupt(format!(
                "format version {version} is not supported (this build reads versions 1 and \
                 {VERSION})"
            )));
        }
        if crc32fast::hash(body) != stored {
            return Err(corrupt(
                "checksum mismatch: the state is truncated or corrupted",
            ));
        }
        let n = reader.u32("n")? as usize;
        let (ks, words) = if version == 1 {
            let k = reader.u32("K")? as usize;
            let words = reader.u32("the key width")? as usize;
            if n == 0 || n > 64 || k == 0 || k > 256 {
                return Err(corrupt(format!(
                    "a version 1 state has 1 to 64 players and 1 to 256 types, got n = {n}, \
                     K = {k}"
                )));
            }
            (vec![k; n], words)
        } else {
            let words = reader.u32("the key width")? as usize;
            if n == 0 || n > reader.remaining() / 4 {
                return Err(corrupt(format!("{n} players do not fit the state")));
            }
            let ks = (0..n)
                .map(|_| reader.u32("the numbers of types").map(|k| k as usize))
                .collect::<CoreResult<Vec<usize>>>()?;
            (ks, words)
        };
        let cells = ks.iter().sum::<usize>();
        // supertypes and marginal counts: 16 bytes per type, checked before allocating
        if cells > reader.remaining() / 16 {
            return Err(corrupt(format!("{cells} types do not fit the state")));
        }
        let layout = KeyLayout::new(&ks).map_err(|e| corrupt(e.to_string()))?;
        let v1_bits = super::key::bits_for(ks[0].max(2));
        let expected_words = if version == 1 {
            n.div_ceil(64 / v1_bits as usize)
        } else {
            layout.words()
        };
        if words != expected_words {
            return Err(corrupt("key width does not match the numbers of types"));
        }
        let gamma = reader.f64("gamma")?;
        check_gamma(gamma).map_err(|e| corrupt(e.to_string()))?;
        let day = reader.u64("the day")?;
        if day >= super::MAX_DAY {
            return Err(corrupt(format!(
                "day {day} is beyond the supported 2^53 days"
            )));
        }
        let complete = match reader.take(1, "the tracking flag")?[0] {
            0 => false,
            1 => true,
            other => return Err(corrupt(format!("tracking flag {other} is not 0 or 1"))),
        };
        let theta = (0..cells)
            .map(|_| reader.f64("the supertypes"))
            .collect::<CoreResult<Vec<f64>>>()?;
        super::check_supertypes(&theta, &ks).map_err(|e| corrupt(e.to_string()))?;
        let marginal = (0..cells)
            .map(|_| reader.u64("the marginal counts"))
            .collect::<CoreResult<Vec<u64>>>()?;
        let mut ledger = Self::build(&theta, &ks, gamma, layout.clone());
        let mut previous: Option<Vec<u64>> = None;
        let mut raw = vec![0u64; words];
        let mut next = |reader: &mut Reader<'_>, digits: &mut [u32]| -> CoreResult<u64> {
            for w in raw.iter_mut() {
                *w = reader.u64("a profile key")?;
            }
            let count = reader.u64("a profile count")?;
            if count == 0 || previous.as_ref().is_some_and(|p| *p >= raw) {
                return Err(corrupt("the profile list is malformed"));
            }
            let mut repacked = vec![0u64; words];
            for (i, d) in digits.iter_mut().enumerate() {
                let t = if version == 1 {
                    v1_digit(&raw, i, v1_bits)
                } else {
                    layout.digit(&raw, i) as u64
                };
                if t >= ks[i] as u64 {
                    return Err(corrupt("a profile key holds a type outside the type space"));
                }
                *d = t as u32;
            }
            if version == 1 {
                for (i, &d) in digits.iter().enumerate() {
                    let per_word = 64 / v1_bits as usize;
                    repacked[i / per_word] |= (d as u64) << ((i % per_word) as u32 * v1_bits);
                }
            } else {
                layout.pack_into(digits.iter().map(|&d| d as u64), &mut repacked);
            }
            if repacked != raw {
                return Err(corrupt("a profile key holds a type outside the type space"));
            }
            previous = Some(raw.clone());
            Ok(count)
        };
        dispatch!(&mut ledger.inner, l => l.restore(&mut reader, &mut next, &marginal, day, complete))?;
        if reader.pos != body.len() {
            return Err(corrupt("trailing bytes after the state"));
        }
        Ok(ledger)
    }
}
