//! Bit-packed keys of bid profiles.
//!
//! A profile d in Delta^n is packed with `bits = ceil(log2 K)` bits per player, `64 / bits`
//! players per 64-bit word, into `W` words. A player's *group key* is the profile with that
//! player's digit cleared: it identifies d_-i within the player's own table. Up to 64 players
//! with up to 256 types need at most 8 words (8 bits x 64 players = 512 bits).

use crate::error::{CoreError, CoreResult};

/// Largest supported number of players.
pub const MAX_PLAYERS: usize = 64;
/// Largest supported number of types.
pub const MAX_TYPES: usize = 256;

/// How profiles of `n` players over `K` types are packed into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLayout {
    bits: u32,
    per_word: usize,
    words: usize,
}

impl KeyLayout {
    /// Layout for `n` players and `k` types; an error beyond the supported sizes.
    pub fn new(n: usize, k: usize) -> CoreResult<Self> {
        if n == 0 || n > MAX_PLAYERS {
            return Err(CoreError::Unsupported(format!(
                "the ledger supports 1 to {MAX_PLAYERS} players, got {n}"
            )));
        }
        if k == 0 || k > MAX_TYPES {
            return Err(CoreError::Unsupported(format!(
                "the ledger supports 1 to {MAX_TYPES} types, got {k}"
            )));
        }
        let bits = usize::BITS - (k.max(2) - 1).leading_zeros();
        let per_word = 64 / bits as usize;
        let words = n.div_ceil(per_word);
        Ok(Self {
            bits,
            per_word,
            words,
        })
    }

    /// Number of 64-bit words a key needs.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Bits used per player.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Word index and bit shift of `player`'s digit.
    #[inline(always)]
    pub fn locate(&self, player: usize) -> (usize, u32) {
        (
            player / self.per_word,
            (player % self.per_word) as u32 * self.bits,
        )
    }

    /// Packs one profile (already validated to lie in 0..K) into a key.
    #[inline(always)]
    pub fn pack<const W: usize>(&self, profile: &[u16]) -> [u64; W] {
        let mut key = [0u64; W];
        for (player, &t) in profile.iter().enumerate() {
            let (w, s) = self.locate(player);
            key[w] |= (t as u64) << s;
        }
        key
    }

    /// The key with `player`'s digit cleared (its group key).
    #[inline(always)]
    pub fn clear<const W: usize>(&self, key: &[u64; W], player: usize) -> [u64; W] {
        let (w, s) = self.locate(player);
        let mask = ((1u64 << self.bits) - 1) << s;
        let mut out = *key;
        out[w] &= !mask;
        out
    }

    /// The key with `player`'s digit set to `t` (its digit must be clear).
    #[inline(always)]
    pub fn with_digit<const W: usize>(&self, key: &[u64; W], player: usize, t: u16) -> [u64; W] {
        let (w, s) = self.locate(player);
        let mut out = *key;
        out[w] |= (t as u64) << s;
        out
    }

    /// `player`'s digit of a key.
    #[inline(always)]
    pub fn digit<const W: usize>(&self, key: &[u64; W], player: usize) -> u16 {
        let (w, s) = self.locate(player);
        ((key[w] >> s) & ((1u64 << self.bits) - 1)) as u16
    }

    /// Unpacks a key into `n` digits.
    pub fn unpack<const W: usize>(&self, key: &[u64; W], out: &mut [u16]) {
        for (player, slot) in out.iter_mut().enumerate() {
            *slot = self.digit(key, player);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(KeyLayout::new(10, 5).unwrap().words(), 1);
        assert_eq!(KeyLayout::new(50, 4).unwrap().words(), 2);
        assert_eq!(KeyLayout::new(64, 256).unwrap().words(), 8);
        assert_eq!(KeyLayout::new(2, 1).unwrap().bits(), 1);
        assert!(KeyLayout::new(65, 2).is_err());
        assert!(KeyLayout::new(3, 257).is_err());
        assert!(KeyLayout::new(0, 2).is_err());
    }

    #[test]
    fn pack_clear_roundtrip() {
        let layout = KeyLayout::new(50, 4).unwrap();
        let profile: Vec<u16> = (0..50).map(|i| (i * 7 % 4) as u16).collect();
        let key: [u64; 2] = layout.pack(&profile);
        let mut back = vec![0u16; 50];
        layout.unpack(&key, &mut back);
        assert_eq!(back, profile);
        for (i, &t) in profile.iter().enumerate() {
            let g = layout.clear(&key, i);
            assert_eq!(layout.digit(&g, i), 0);
            assert_eq!(layout.with_digit(&g, i, t), key);
        }
    }
}
