//! Versioned, checksummed byte state of a ledger.
//!
//! Layout (little endian): magic `SMLEDGER`, format version (u32), n (u32), K (u32), key words
//! (u32), gamma (f64), day (u64), whether every group is tracked (u8), supertypes (n K f64),
//! marginal counts (n K u64), the number
//! of distinct profiles seen (u64) and each profile's packed key (words u64) and count J(d)
//! (u64) in increasing key order; finally a CRC-32 of everything before it.
//!
//! The profile counts J(d) determine everything else: block counts, the players' tracked groups,
//! their per-type records and heaps are derived state, rebuilt on load. Loading checks the checksum first and
//! then the structure, so a truncated or corrupted state is an error, never a silently wrong
//! ledger; the bytes are canonical, so a restored ledger saves to the same bytes.

use super::{hash_key, BidLedger, CountStore, Inner, KeyLayout, LedgerImpl};
use crate::error::{CoreError, CoreResult};
use crate::window::check_gamma;

const MAGIC: &[u8; 8] = b"SMLEDGER";
const VERSION: u32 = 1;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, what: &str) -> CoreResult<&'a [u8]> {
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
    fn u32(&mut self, what: &str) -> CoreResult<u32> {
        Ok(u32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, what: &str) -> CoreResult<u64> {
        Ok(u64::from_le_bytes(
            self.take(8, what)?.try_into().expect("8 bytes"),
        ))
    }
    fn f64(&mut self, what: &str) -> CoreResult<f64> {
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

    /// Rebuilds every table from the stored profile counts and checks them against the stored
    /// marginal counts.
    fn restore(
        &mut self,
        reader: &mut Reader<'_>,
        marginal: &[u64],
        day: u64,
        complete: bool,
    ) -> CoreResult<()> {
        let (n, k) = (self.n, self.k);
        let profiles = reader.u64("the number of profiles")?;
        if profiles > day {
            return Err(corrupt(format!(
                "{profiles} distinct profiles for {day} days"
            )));
        }
        let mut total = 0u64;
        let mut previous: Option<[u64; W]> = None;
        let mut digits = vec![0u16; n];
        for _ in 0..profiles {
            let mut key = [0u64; W];
            for w in key[..self.layout.words()].iter_mut() {
                *w = reader.u64("a profile key")?;
            }
            let count = reader.u64("a profile count")?;
            self.layout.unpack(&key, &mut digits);
            if digits.iter().any(|&t| t as usize >= k) || self.layout.pack::<W>(&digits) != key {
                return Err(corrupt("a profile key holds a type outside the type space"));
            }
            if count == 0 || previous.is_some_and(|p| p >= key) {
                return Err(corrupt("the profile list is malformed"));
            }
            previous = Some(key);
            total = total
                .checked_add(count)
                .ok_or_else(|| corrupt("counts overflow"))?;
            self.joint.add(&key, hash_key(&key), count);
            self.blocks.add(|i| digits[i] as usize, count);
            for (player, &t) in self.players.iter_mut().zip(&digits) {
                player.marginal[t as usize] += count;
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
            let mut counts = Vec::new();
            for i in 0..n {
                let totals = self.group_totals(i);
                for slot in totals.iter().filter(|s| s.count as f64 >= bound) {
                    self.shared().read_back(&slot.key, i, &mut counts);
                    self.players[i].track(&slot.key, hash_key(&slot.key), &counts);
                }
            }
        }
        Ok(())
    }
}

impl BidLedger {
    /// The ledger's complete state as versioned, checksummed bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_le_bytes());
        let (n, k) = (self.n_players(), self.n_types());
        buf.extend_from_slice(&(n as u32).to_le_bytes());
        buf.extend_from_slice(&(k as u32).to_le_bytes());
        let words = dispatch!(&self.inner, l => l.layout.words());
        buf.extend_from_slice(&(words as u32).to_le_bytes());
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

    /// Restores a ledger from [`BidLedger::to_bytes`]; any damage is a `CorruptState` error.
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
        if version != VERSION {
            return Err(corrupt(format!(
                "format version {version} is not supported (this build reads version {VERSION})"
            )));
        }
        if crc32fast::hash(body) != stored {
            return Err(corrupt(
                "checksum mismatch: the state is truncated or corrupted",
            ));
        }
        let n = reader.u32("n")? as usize;
        let k = reader.u32("K")? as usize;
        let words = reader.u32("the key width")? as usize;
        let layout = KeyLayout::new(n, k).map_err(|e| corrupt(e.to_string()))?;
        if layout.words() != words {
            return Err(corrupt("key width does not match n and K"));
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
        let theta = (0..n * k)
            .map(|_| reader.f64("the supertypes"))
            .collect::<CoreResult<Vec<f64>>>()?;
        super::check_supertypes(&theta, n, k).map_err(|e| corrupt(e.to_string()))?;
        let marginal = (0..n * k)
            .map(|_| reader.u64("the marginal counts"))
            .collect::<CoreResult<Vec<u64>>>()?;
        let mut ledger = Self::build(&theta, n, k, gamma, layout);
        dispatch!(&mut ledger.inner, l => l.restore(&mut reader, &marginal, day, complete))?;
        if reader.pos != body.len() {
            return Err(corrupt("trailing bytes after the state"));
        }
        Ok(ledger)
    }
}
