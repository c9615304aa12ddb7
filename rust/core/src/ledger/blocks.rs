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
    /// Block of each player (`NONE`: in no block).
    block: Vec<usize>,
    /// Players of each block, with their number of types.
    members: Vec<Vec<(usize, usize)>>,
    counts: Vec<Vec<u64>>,
}

/// Block index of a player that is in no block.
const NONE: usize = usize::MAX;

/// Bounds of one day: the smallest and second smallest block count and the first's block.
#[derive(Clone, Copy, Debug)]
pub struct DayBound {
    min: u64,
    argmin: usize,
    second: u64,
}

impl DayBound {
    /// The largest bound any player gets from this day (the second smallest block count).
    #[inline(always)]
    pub fn loosest(&self) -> u64 {
        self.second
    }

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
    /// Blocks of consecutive players with `ks[i]` types each: at least two blocks when two
    /// players have 2 to `MAX_CELLS` types. Players with one type (their digit is constant) or
    /// with more than `MAX_CELLS` types are in no block.
    pub fn new(ks: &[usize]) -> Self {
        let eligible: Vec<usize> = (0..ks.len())
            .filter(|&i| (2..=MAX_CELLS).contains(&ks[i]))
            .collect();
        let half = eligible.len().div_ceil(2).max(1);
        let mut block = vec![NONE; ks.len()];
        let mut members: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut cells = usize::MAX;
        for &i in &eligible {
            let fits = members
                .last()
                .is_some_and(|m| m.len() < half && cells.saturating_mul(ks[i]) <= MAX_CELLS);
            if !fits {
                members.push(Vec::new());
                cells = 1;
            }
            cells *= ks[i];
            members.last_mut().expect("a block").push((i, ks[i]));
            block[i] = members.len() - 1;
        }
        let counts = members
            .iter()
            .map(|m| vec![0u64; m.iter().map(|e| e.1).product()])
            .collect();
        Self {
            block,
            members,
            counts,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Block of `player` (`usize::MAX` when it is in none).
    #[inline(always)]
    pub fn block_of(&self, player: usize) -> usize {
        self.block[player]
    }

    /// Adds `by` days of the profile whose player i bid `bid(i)` and returns its bounds.
    #[inline(always)]
    pub fn add(&mut self, bid: impl Fn(usize) -> usize, by: u64) -> DayBound {
        let mut bound = DayBound {
            min: u64::MAX,
            argmin: usize::MAX - 1,
            second: u64::MAX,
        };
        for (b, (counts, members)) in self.counts.iter_mut().zip(&self.members).enumerate() {
            // mixed-radix cell of the block's sub-profile, first player least significant
            let cell = members
                .iter()
                .rev()
                .fold(0usize, |acc, &(i, k)| acc * k + bid(i));
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
        let mut blocks = BlockCounts::new(&[k; 7]);
        let mut groups: Vec<HashMap<Vec<u32>, u64>> = vec![HashMap::new(); n];
        let mut s = 7u64;
        for _ in 0..5000 {
            let profile: Vec<u32> = (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s % k as u64) as u32
                })
                .collect();
            let bound = blocks.add(|i| profile[i] as usize, 1);
            for i in 0..n {
                let mut g = profile.clone();
                g[i] = u32::MAX;
                let m = groups[i].entry(g).or_insert(0);
                *m += 1;
                assert!(*m <= bound.for_block(blocks.block_of(i)));
            }
        }
    }

    #[test]
    fn single_player_has_no_bound() {
        let mut blocks = BlockCounts::new(&[4]);
        let bound = blocks.add(|_| 2, 1);
        assert_eq!(bound.for_block(blocks.block_of(0)), u64::MAX);
    }
}
