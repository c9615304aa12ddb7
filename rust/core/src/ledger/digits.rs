//! Bids as compact digits: the day loop reads one byte per bid when every player has at most
//! 256 types (two bytes up to 65,536, four beyond), a quarter to an eighth of the memory
//! traffic of 64-bit bids.

use crate::error::{CoreError, CoreResult};

/// A type bid as the ledger reads it: `u8`, `u16`, `u32` or `i64`.
pub trait Digit: Copy + Send + Sync + 'static {
    /// The bid as a signed value (for range checks and messages).
    fn value(self) -> i64;
    /// The bid as an index (only after it has been checked to lie in its player's range).
    #[inline(always)]
    fn index(self) -> usize {
        self.value() as usize
    }
}

macro_rules! digit {
    ($($t:ty),*) => {$(
        impl Digit for $t {
            #[inline(always)]
            fn value(self) -> i64 {
                self as i64
            }
        }
    )*};
}
digit!(u8, u16, u32, i64);

/// A batch of bids converted to the narrowest digit that holds every player's types.
#[derive(Debug, Clone, PartialEq)]
pub enum CompactBids {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

/// Where a batch first leaves a player's range: (row, player, bid).
pub type OutOfRange = (usize, usize, i64);

impl CompactBids {
    /// Converts row-major `(rows, ks.len())` bids, checking each against its player's
    /// `0..ks[i]` in the same pass. On a bid out of range returns where it is (the first in
    /// row-major order), so the caller can name the day.
    pub fn from_i64(bids: &[i64], ks: &[usize]) -> Result<Self, OutOfRange> {
        let widest = ks.iter().copied().max().unwrap_or(1);
        if widest <= 1 << 8 {
            convert(bids, ks).map(Self::U8)
        } else if widest <= 1 << 16 {
            convert(bids, ks).map(Self::U16)
        } else {
            convert(bids, ks).map(Self::U32)
        }
    }

    /// Number of bids.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::U16(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    /// Whether there are no bids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn convert<D: TryFrom<i64> + Copy + Default>(
    bids: &[i64],
    ks: &[usize],
) -> Result<Vec<D>, OutOfRange> {
    let n = ks.len().max(1);
    let mut out = vec![D::default(); bids.len()];
    for (row, (src, dst)) in bids.chunks(n).zip(out.chunks_mut(n)).enumerate() {
        let mut bad = false;
        for ((&b, &k), d) in src.iter().zip(ks).zip(dst.iter_mut()) {
            // branch-free in the common case: one flag per row
            bad |= b < 0 || b >= k as i64;
            *d = D::try_from(b).unwrap_or_default();
        }
        if bad {
            let player = src
                .iter()
                .zip(ks)
                .position(|(&b, &k)| b < 0 || b >= k as i64)
                .expect("a bid out of range");
            return Err((row, player, src[player]));
        }
    }
    Ok(out)
}

/// The error of a bid out of range on day `day` (1-based).
pub fn out_of_range(day: u64, (_, player, bid): OutOfRange, ks: &[usize]) -> CoreError {
    CoreError::BidOutOfRange {
        day,
        player,
        bid,
        types: ks[player],
    }
}

/// Checks every bid against its player's range; the error names the day (`first_day` + row).
pub fn check_range<D: Digit>(bids: &[D], ks: &[usize], first_day: u64) -> CoreResult<()> {
    let n = ks.len().max(1);
    for (row, profile) in bids.chunks_exact(n).enumerate() {
        let bad = profile.iter().zip(ks).fold(false, |bad, (&b, &k)| {
            bad | (b.value() < 0 || b.value() >= k as i64)
        });
        if bad {
            let player = profile
                .iter()
                .zip(ks)
                .position(|(&b, &k)| b.value() < 0 || b.value() >= k as i64)
                .expect("a bid out of range");
            return Err(out_of_range(
                first_day + row as u64,
                (row, player, profile[player].value()),
                ks,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowest_digit_and_first_bad_bid() {
        let ks = [3, 2];
        let bids = [0i64, 1, 2, 0, 1, 1];
        assert_eq!(
            CompactBids::from_i64(&bids, &ks),
            Ok(CompactBids::U8(vec![0, 1, 2, 0, 1, 1]))
        );
        assert!(matches!(
            CompactBids::from_i64(&[0, 300], &[2, 301]),
            Ok(CompactBids::U16(_))
        ));
        assert!(matches!(
            CompactBids::from_i64(&[0, 70_000], &[2, 70_001]),
            Ok(CompactBids::U32(_))
        ));
        assert_eq!(
            CompactBids::from_i64(&[0, 1, 2, 2, -1, 0], &ks),
            Err((1, 1, 2))
        );
        assert_eq!(CompactBids::from_i64(&[0, 1, -1, 0], &ks), Err((1, 0, -1)));
        assert!(check_range(&[0u8, 1, 2, 2], &ks, 5).is_err());
        assert!(check_range(&[0u8, 1, 2, 1], &ks, 5).is_ok());
    }
}
