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
    /// Block of each player.
    block_of: Vec<usize>,
    /// Mixed-radix weight of each player's bid within its block.
    weight: Vec<usize>,
    counts: Vec<Vec<u64>>,
    /// Cell of each block for the current day.
    cell: Vec<usize>,
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
        let blocks = n.div_ceil(size);
        let mut block_of = Vec::with_capacity(n);
        let mut weight = Vec::with_capacity(n);
        for i in 0..n {
            block_of.push(i / size);
            weight.push(k.pow((i % size) as u32));
        }
        let counts = (0..blocks)
            .map(|b| {
                let members = (n - b * size).min(size);
                vec![0u64; k.pow(members as u32)]
            })
            .collect();
        Self {
            block_of,
            weight,
            counts,
            cell: vec![0; blocks],
        }
    }

    /// Block of `player`.
    #[inline(always)]
    pub fn block_of(&self, player: usize) -> usize {
        self.block_of[player]
    }

    /// Adds `by` days of the profile whose player i bid `bid(i)` and returns its bounds.
    #[inline(always)]
    pub fn add(&mut self, bid: impl Fn(usize) -> usize, by: u64) -> DayBound {
        self.cell.iter_mut().for_each(|c| *c = 0);
        for (i, (&b, &w)) in self.block_of.iter().zip(&self.weight).enumerate() {
            self.cell[b] += bid(i) * w;
        }
        let mut bound = DayBound {
            min: u64::MAX,
            argmin: usize::MAX,
            second: u64::MAX,
        };
        for (b, (counts, &cell)) in self.counts.iter_mut().zip(&self.cell).enumerate() {
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
