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

/// A digit type that an in-range bid is narrowed to by truncation.
trait Narrow: Copy {
    fn narrow(bid: i64) -> Self;
}

macro_rules! narrow {
    ($($t:ty),*) => {$(
        impl Narrow for $t {
            #[inline(always)]
            fn narrow(bid: i64) -> Self {
                // checked to lie in 0..k <= the type's range before it is used
                bid as $t
            }
        }
    )*};
}
narrow!(u8, u16, u32);

/// Rows checked together (one flag for all of them).
const CHECK_ROWS: usize = 64;

fn convert<D: Narrow>(bids: &[i64], ks: &[usize]) -> Result<Vec<D>, OutOfRange> {
    let n = ks.len().max(1);
    let ks: Vec<u64> = ks.iter().map(|&k| k as u64).collect();
    let mut out = Vec::with_capacity(bids.len());
    for (block, src) in bids.chunks(n * CHECK_ROWS).enumerate() {
        // branch-free: a negative bid is a huge unsigned one
        let mut bad = false;
        for row in src.chunks(n) {
            for (&b, &k) in row.iter().zip(&ks) {
                bad |= b as u64 >= k;
            }
        }
        if bad {
            let (at, b) = src
                .iter()
                .zip(ks.iter().cycle())
                .position(|(&b, &k)| b as u64 >= k)
                .map(|at| (at, src[at]))
                .expect("a bid out of range");
            return Err((block * CHECK_ROWS + at / n, at % n, b));
        }
        out.extend(src.iter().map(|&b| D::narrow(b)));
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
