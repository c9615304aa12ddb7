//! Block counts: an exact, cache-resident upper bound on M_i(d_-i).
//!
//! Players are split into blocks of consecutive players small enough that a dense table of the
//! block's sub-profile counts has at most `MAX_CELLS` cells. For a profile d and a block B not
//! containing player i, every day whose profile without i equals d_-i has sub-profile d_B on B,
//! so M_i(d_-i) <= C_B(d_B). The ledger uses min over such blocks to prove, without touching
//! any large table, that most groups cannot reach the firing threshold.

/// Largest number of cells of one block's table.
const MAX_CELLS: usize = 4096;

/// Dense sub-profile counts of each block.
#[derive(Clone)]
pub struct BlockCounts {
    /// Players per block (the last block may hold fewer).
    size: usize,
    k: usize,
    n: usize,
    counts: Vec<Vec<u64>>,
}

/// Bounds of one day: the smallest and second smallest block count and the first's block.
#[derive(Clone, Copy, Debug)]
pub struct DayBound {
    min: u64,
    argmin: usize,
    second: u64,
}

impl DayBound {
    /// Upper bound on M_i(d_-i) for a player in block `block`.
    #[inline(always)]
    pub fn for_block(&self, block: usize) -> u64 {
        if block == self.argmin {
            self.second
        } else {
            self.min
        }
    }
}

impl BlockCounts {
    /// Blocks for `n` players over `k` types: at least two blocks when n >= 2.
    pub fn new(n: usize, k: usize) -> Self {
        let mut size = 1usize;
        while size < n.div_ceil(2) && k.saturating_pow(size as u32 + 1) <= MAX_CELLS {
            size += 1;
        }
        let counts = (0..n.div_ceil(size))
            .map(|b| vec![0u64; k.pow((n - b * size).min(size) as u32)])
            .collect();
        Self { size, k, n, counts }
    }

    /// Block of `player`.
    #[inline(always)]
    pub fn block_of(&self, player: usize) -> usize {
        player / self.size
    }

    /// Adds `by` days of the profile whose player i bid `bid(i)` and returns its bounds.
    #[inline(always)]
    pub fn add(&mut self, bid: impl Fn(usize) -> usize, by: u64) -> DayBound {
        let mut bound = DayBound {
            min: u64::MAX,
            argmin: usize::MAX,
            second: u64::MAX,
        };
        for (b, counts) in self.counts.iter_mut().enumerate() {
            let start = b * self.size;
            let end = (start + self.size).min(self.n);
            // mixed-radix cell of the block's sub-profile, first player least significant
            let cell = (start..end)
                .rev()
                .fold(0usize, |acc, i| acc * self.k + bid(i));
            counts[cell] += by;
            let c = counts[cell];
            if c < bound.min {
                bound.second = bound.min;
                bound.min = c;
                bound.argmin = b;
            } else if c < bound.second {
                bound.second = c;
            }
        }
        bound
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.counts.iter().map(|c| c.capacity() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_dominate_group_counts() {
        use std::collections::HashMap;
        let (n, k) = (7, 3);
        let mut blocks = BlockCounts::new(n, k);
        let mut groups: Vec<HashMap<Vec<u16>, u64>> = vec![HashMap::new(); n];
        let mut s = 7u64;
        for _ in 0..5000 {
            let profile: Vec<u16> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % k as u64) as u16
                })
                .collect();
            let bound = blocks.add(|i| profile[i] as usize, 1);
            for i in 0..n {
                let mut g = profile.clone();
                g[i] = u16::MAX;
                let m = groups[i].entry(g).or_insert(0);
                *m += 1;
                assert!(*m <= bound.for_block(blocks.block_of(i)));
            }
        }
    }

    #[test]
    fn single_player_has_no_bound() {
        let mut blocks = BlockCounts::new(1, 4);
        let bound = blocks.add(|_| 2, 1);
        assert_eq!(bound.for_block(blocks.block_of(0)), u64::MAX);
    }
}
