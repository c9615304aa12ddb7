//! Bit-packed keys of bid profiles.
//!
//! Player i's digit takes `bits_i = ceil(log2 K_i)` bits (none for a single-type player).
//! Digits are laid out in player order, each within one 64-bit word: a digit that would
//! straddle a word boundary starts the next word. The packed key is the exact mixed-radix
//! identity of a profile. A player's *group key* is the profile with that player's digit
//! cleared: it identifies d_-i within the player's own table.
//!
//! Keys of at most [`MAX_PACKED_WORDS`] words are held inline (`[u64; W]`) by the packed
//! ledger; longer keys are stored once per distinct profile by the wide ledger
//! ([`super::wide`]), which never materializes group keys.

use crate::error::{CoreError, CoreResult};

/// Largest key width (in 64-bit words) held inline by the packed ledger.
pub const MAX_PACKED_WORDS: usize = 8;

/// Bits of a digit over `k` types.
#[inline]
pub fn bits_for(k: usize) -> u32 {
    if k <= 1 {
        0
    } else {
        usize::BITS - (k - 1).leading_zeros()
    }
}

/// How profiles of `n` players over their own `K_i` types are packed into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// (word, shift) of each player's digit.
    place: Vec<(u32, u32)>,
    /// Mask of each player's digit (before shifting).
    mask: Vec<u64>,
    /// Shift of each player's digit in its word.
    shifts: Vec<u32>,
    /// Players are packed in order: word w holds players `word_ends[w - 1]..word_ends[w]`.
    word_ends: Vec<usize>,
    words: usize,
    total_bits: u64,
}

impl KeyLayout {
    /// Layout for players with `ks[i]` types each (every `ks[i] >= 1`).
    pub fn new(ks: &[usize]) -> CoreResult<Self> {
        if ks.is_empty() {
            return Err(CoreError::InvalidArgument(
                "the ledger needs at least one player".into(),
            ));
        }
        let mut place = Vec::with_capacity(ks.len());
        let mut mask = Vec::with_capacity(ks.len());
        let (mut word, mut used, mut total_bits) = (0u32, 0u32, 0u64);
        for (i, &k) in ks.iter().enumerate() {
            if k == 0 || k > u32::MAX as usize {
                return Err(CoreError::InvalidArgument(format!(
                    "player {i} has {k} types; a player needs 1 to 2^32 - 1 types"
                )));
            }
            let bits = bits_for(k);
            if used + bits > 64 {
                word += 1;
                used = 0;
            }
            place.push((word, used));
            mask.push(if bits == 0 {
                0
            } else {
                u64::MAX >> (64 - bits)
            });
            used += bits;
            total_bits += bits as u64;
        }
        let words = word as usize + 1;
        let word_ends = (0..words as u32)
            .map(|w| place.iter().take_while(|p| p.0 <= w).count())
            .collect();
        Ok(Self {
            shifts: place.iter().map(|p| p.1).collect(),
            word_ends,
            place,
            mask,
            words,
            total_bits,
        })
    }

    /// Packs a profile given as digits (already validated) into `out`'s first words, calling
    /// `each(player, digit)` on the way (one pass over the profile for both).
    #[inline(always)]
    pub fn pack_with<D: Copy>(
        &self,
        profile: &[D],
        digit: impl Fn(D) -> usize,
        out: &mut [u64],
        mut each: impl FnMut(usize, usize),
    ) {
        let mut start = 0;
        for (w, &end) in self.word_ends.iter().enumerate() {
            let mut acc = 0u64;
            for (i, (&d, &s)) in profile[start..end]
                .iter()
                .zip(&self.shifts[start..end])
                .enumerate()
            {
                let t = digit(d);
                acc |= (t as u64) << s;
                each(start + i, t);
            }
            out[w] = acc;
            start = end;
        }
    }

    /// Number of 64-bit words a key needs.
    #[inline(always)]
    pub fn words(&self) -> usize {
        self.words
    }

    /// Bits used by all digits together.
    pub fn total_bits(&self) -> u64 {
        self.total_bits
    }

    /// Word index and bit shift of `player`'s digit.
    #[inline(always)]
    pub fn locate(&self, player: usize) -> (usize, u32) {
        let (w, s) = self.place[player];
        (w as usize, s)
    }

    /// Digit mask of `player` (unshifted).
    #[inline(always)]
    pub fn mask(&self, player: usize) -> u64 {
        self.mask[player]
    }

    /// Packs one profile (already validated) into a key.
    #[inline(always)]
    pub fn pack<const W: usize>(&self, profile: &[u32]) -> [u64; W] {
        let mut key = [0u64; W];
        self.pack_into(profile.iter().map(|&t| t as u64), &mut key);
        key
    }

    /// Packs the digits of `profile` into `out` (which must hold `words()` zeroed words).
    #[inline(always)]
    pub fn pack_into(&self, profile: impl Iterator<Item = u64>, out: &mut [u64]) {
        for (&(w, s), t) in self.place.iter().zip(profile) {
            out[w as usize] |= t << s;
        }
    }

    /// The key with `player`'s digit cleared (its group key).
    #[inline(always)]
    pub fn clear<const W: usize>(&self, key: &[u64; W], player: usize) -> [u64; W] {
        let (w, s) = self.locate(player);
        let mut out = *key;
        out[w] &= !(self.mask[player] << s);
        out
    }

    /// The key with `player`'s digit set to `t` (its digit must be clear).
    #[inline(always)]
    pub fn with_digit<const W: usize>(&self, key: &[u64; W], player: usize, t: u32) -> [u64; W] {
        let (w, s) = self.locate(player);
        let mut out = *key;
        out[w] |= (t as u64) << s;
        out
    }

    /// `player`'s digit of a key (any number of words).
    #[inline(always)]
    pub fn digit(&self, key: &[u64], player: usize) -> u32 {
        let (w, s) = self.locate(player);
        ((key[w] >> s) & self.mask[player]) as u32
    }

    /// Unpacks a key into `n` digits.
    pub fn unpack(&self, key: &[u64], out: &mut [u32]) {
        for (player, slot) in out.iter_mut().enumerate() {
            *slot = self.digit(key, player);
        }
    }

    /// Whether keys `a` and `b` agree on every digit except `player`'s.
    #[inline(always)]
    pub fn same_group(&self, a: &[u64], b: &[u64], player: usize) -> bool {
        let (w, s) = self.locate(player);
        let m = !(self.mask[player] << s);
        a[..w] == b[..w] && (a[w] ^ b[w]) & m == 0 && a[w + 1..] == b[w + 1..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(KeyLayout::new(&[5; 10]).unwrap().words(), 1);
        assert_eq!(KeyLayout::new(&[4; 50]).unwrap().words(), 2);
        assert_eq!(KeyLayout::new(&[256; 64]).unwrap().words(), 8);
        assert_eq!(KeyLayout::new(&[1, 1]).unwrap().total_bits(), 0);
        assert_eq!(KeyLayout::new(&[1, 1]).unwrap().words(), 1);
        // 3 bits x 21 = 63, the 22nd digit starts word 1
        assert_eq!(KeyLayout::new(&[8; 22]).unwrap().locate(21), (1, 0));
        assert_eq!(KeyLayout::new(&[65_536; 4]).unwrap().words(), 1);
        assert!(KeyLayout::new(&[]).is_err());
        assert!(KeyLayout::new(&[2, 0]).is_err());
    }

    #[test]
    fn pack_clear_roundtrip() {
        let ks: Vec<usize> = (0..50).map(|i| [1, 2, 3, 16, 300][i % 5]).collect();
        let layout = KeyLayout::new(&ks).unwrap();
        let profile: Vec<u32> = (0..50).map(|i| ((i * 7) % ks[i]) as u32).collect();
        let key: [u64; 8] = layout.pack(&profile);
        let mut back = vec![0u32; 50];
        layout.unpack(&key, &mut back);
        assert_eq!(back, profile);
        for (i, &t) in profile.iter().enumerate() {
            let g = layout.clear(&key, i);
            assert_eq!(layout.digit(&g, i), 0);
            assert_eq!(layout.with_digit(&g, i, t), key);
            assert!(layout.same_group(&g, &key, i));
            let other = (i + 1) % 50;
            let changed = layout.with_digit(&layout.clear(&key, other), other, 0);
            assert_eq!(layout.same_group(&changed, &key, i), profile[other] == 0);
        }
    }
}
