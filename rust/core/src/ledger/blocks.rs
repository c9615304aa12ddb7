//! Block counts: an exact, cache-resident upper bound on M_i(d_-i).
//!
//! A *block* is a set of players small enough that a dense table of the block's sub-profile
//! counts fits in a cache. For a profile d and a block B not containing player i, every day
//! whose profile without i equals d_-i has sub-profile d_B on B, so M_i(d_-i) <= C_B(d_B), and
//! the ledger uses the smallest such count to prove, without touching any large table, that
//! most groups cannot reach the firing threshold.
//!
//! # Which blocks
//! The bound is only as good as the sub-profile is unlikely, so blocks should be large, and
//! every player needs a block without it. Players are first split into consecutive blocks of
//! at most `MAX_CELLS` cells (at least two blocks). When the declared supertypes make some
//! player's bounding cell likely (its probability, the product of the block members' largest
//! type probabilities, at least `HOT`), larger blocks of up to `MAX_CELLS_LARGE` cells are
//! tried: consecutive blocks when there are three or more, otherwise overlapping windows
//! around the circle of players (each player outside at least one window). Which blocks are
//! used changes speed only: every choice gives an exact upper bound.

/// Largest number of cells of one block's table in the first split.
const MAX_CELLS: usize = 4096;
/// Largest number of cells of one block's table when larger blocks are tried.
const MAX_CELLS_LARGE: usize = 1 << 17;
/// A bounding cell at least this likely is "hot": its count reaches the firing threshold
/// within about 10^7 days.
const HOT: f64 = 1e-3;

use super::key::KeyLayout;

/// Bits of an ordering key that hold the block (see [`order_key`]).
const BLOCK_BITS: u32 = 24;
const BLOCK_MASK: u64 = (1 << BLOCK_BITS) - 1;
/// The ordering key of no block (larger than every other).
const NO_BOUND: u64 = u64::MAX;

/// A key that orders blocks by their count (saturated at 2^40 - 1: past it, any block
/// gives a bound, which is all the order is for), then by block number.
#[inline(always)]
fn order_key(count: u64, block: usize) -> u64 {
    (count.min((1 << (64 - BLOCK_BITS)) - 1) << BLOCK_BITS) | block as u64
}

/// Number of blocks whose cells are computed together (see [`BlockCounts::cells`]).
pub const LANES: usize = 4;
/// A profile's cells in up to [`LANES`] blocks.
pub type Cells = [u32; LANES];

/// Cells of at most [`LANES`] blocks as one small vector sum: each block member's digit's
/// contributions (its place value in each block times the digit).
#[derive(Clone)]
struct Lanes {
    /// Row `start + d` of a member whose rows start at `start`: digit d's contributions.
    rows: Vec<Cells>,
    /// The players in some block, with the start of their rows.
    players: Vec<(usize, usize)>,
}

/// Where a block's cell lies in a packed profile key: `mask` bits from bit `shift` of word
/// `word`, continuing into the next word when `cross`.
#[derive(Clone, Copy)]
struct Field {
    word: usize,
    shift: u32,
    mask: u64,
    cross: bool,
}

impl Field {
    #[inline(always)]
    fn cell(&self, key: &[u64]) -> usize {
        let low = key[self.word] >> self.shift;
        let bits = if self.cross {
            // shift > 0 here: the field starts inside its first word
            low | key[self.word + 1] << (64 - self.shift)
        } else {
            low
        };
        (bits & self.mask) as usize
    }
}

/// Dense sub-profile counts of each block.
#[derive(Clone)]
pub struct BlockCounts {
    /// Players of each block, with their number of types (blocks may overlap).
    members: Vec<Vec<(usize, usize)>>,
    counts: Vec<Vec<u64>>,
    /// Each block's members with their place values in the block's cell number.
    strides: Vec<Vec<(usize, usize)>>,
    /// Each block's count of the last added profile's cell.
    today: Vec<u64>,
    /// Disjoint blocks: the block of each player (`usize::MAX`: none); a player's bound is
    /// the smallest count of the other blocks, read off the day's two smallest.
    block: Vec<usize>,
    /// Overlapping blocks (few of them): the segment of each player, where players outside
    /// the same blocks share a segment, and each segment's blocks outside it (empty vectors
    /// for disjoint blocks).
    segment: Vec<usize>,
    outside: Vec<Vec<usize>>,
    /// Overlapping blocks: each segment's bound from the last added profile and the block
    /// giving it (`usize::MAX`: none).
    bound: Vec<u64>,
    /// Disjoint blocks: the last added profile's smallest and second smallest block counts,
    /// with their blocks.
    least: [u64; 2],
    /// At most [`LANES`] blocks of fewer than 2^32 cells: each player's place value in each
    /// block (zero outside it), for cells computed as one small vector sum.
    lanes: Option<Lanes>,
    /// Every block's cell as a bit field (word, shift, mask) of the packed profile key, when
    /// every member has a power-of-two number of types and the members' digits are adjacent
    /// in one word (see [`Self::use_key_fields`]).
    fields: Option<Vec<Field>>,
    /// Overlapping blocks: whether some segment has no block outside it.
    unbounded: bool,
    /// Whether the tables are too large to stay in the first cache levels (worth prefetching).
    large: bool,
}

/// Blocks of one design: each a list of (player, number of types).
type Design = Vec<Vec<(usize, usize)>>;

/// Consecutive blocks of `eligible` players with at most `max_players` players and
/// `max_cells` cells each.
fn consecutive(eligible: &[usize], ks: &[usize], max_players: usize, max_cells: usize) -> Design {
    let mut members: Design = Vec::new();
    let mut cells = usize::MAX;
    for &i in eligible {
        let fits = members
            .last()
            .is_some_and(|m| m.len() < max_players && cells.saturating_mul(ks[i]) <= max_cells);
        if !fits {
            members.push(Vec::new());
            cells = 1;
        }
        cells *= ks[i];
        members.last_mut().expect("a block").push((i, ks[i]));
    }
    members
}

/// Overlapping windows of `w` consecutive players around the circle of `eligible` players,
/// each player outside at least one of them; `None` when a window has too many cells.
fn windows(eligible: &[usize], ks: &[usize], w: usize, max_cells: usize) -> Option<Design> {
    let m = eligible.len();
    if w == 0 || w >= m {
        return None;
    }
    let count = m.div_ceil(m - w);
    let mut design = Vec::with_capacity(count);
    for b in 0..count {
        let start = b * (m - w);
        let block: Vec<(usize, usize)> = (0..w)
            .map(|t| {
                let i = eligible[(start + t) % m];
                (i, ks[i])
            })
            .collect();
        let cells = block
            .iter()
            .try_fold(1usize, |acc, &(_, k)| acc.checked_mul(k))?;
        if cells > max_cells {
            return None;
        }
        design.push(block);
    }
    Some(design)
}

/// The largest probability of a player's bounding cell under `design`: for each player, the
/// smallest over the blocks without it of the product of the members' largest type
/// probabilities; 1 for a player with no such block.
fn hottest(design: &Design, largest: &[f64]) -> f64 {
    let product: Vec<f64> = design
        .iter()
        .map(|b| b.iter().map(|&(j, _)| largest[j]).product())
        .collect();
    let mut order: Vec<usize> = (0..design.len()).collect();
    order.sort_by(|&a, &b| product[a].total_cmp(&product[b]));
    let mut inside: Vec<Vec<usize>> = vec![Vec::new(); largest.len()];
    for (b, block) in design.iter().enumerate() {
        for &(j, _) in block {
            inside[j].push(b);
        }
    }
    inside
        .iter()
        .map(|own| {
            order
                .iter()
                .find(|b| !own.contains(b))
                .map_or(1.0, |&b| product[b])
        })
        .fold(0.0f64, f64::max)
}

impl BlockCounts {
    /// Blocks for players with `ks[i]` types each and largest type probabilities `largest[i]`
    /// (their declared supertypes'; used only to choose the blocks). Players with one type
    /// (their digit is constant) or with more than `MAX_CELLS_LARGE` types are in no block.
    pub fn new(ks: &[usize], largest: &[f64]) -> Self {
        debug_assert_eq!(ks.len(), largest.len());
        let eligible: Vec<usize> = (0..ks.len())
            .filter(|&i| (2..=MAX_CELLS).contains(&ks[i]))
            .collect();
        let m = eligible.len();
        let half = m.div_ceil(2).max(1);
        let mut design = consecutive(&eligible, ks, half, MAX_CELLS);
        let mut heat = hottest(&design, largest);
        if heat >= HOT && m >= 3 {
            let size = design.iter().map(Vec::len).max().unwrap_or(1);
            for w in size + 1..m {
                let candidate = if m.div_ceil(w) >= 3 {
                    Some(consecutive(&eligible, ks, w, MAX_CELLS_LARGE))
                } else {
                    windows(&eligible, ks, w, MAX_CELLS_LARGE)
                };
                let Some(candidate) = candidate else { break };
                let grown = candidate.iter().any(|b| b.len() == w);
                let h = hottest(&candidate, largest);
                if h < heat {
                    design = candidate;
                    heat = h;
                }
                // no block can grow further, or the bound is cool enough
                if heat < HOT || !grown {
                    break;
                }
            }
        }
        Self::from_design(ks.len(), design)
    }

    /// The first split only (consecutive blocks of at most `MAX_CELLS` cells, at least two),
    /// whatever the supertypes: looser bounds, for tests of what the ledger does with them.
    #[cfg(test)]
    pub fn first_split(ks: &[usize]) -> Self {
        let eligible: Vec<usize> = (0..ks.len())
            .filter(|&i| (2..=MAX_CELLS).contains(&ks[i]))
            .collect();
        let half = eligible.len().div_ceil(2).max(1);
        Self::from_design(ks.len(), consecutive(&eligible, ks, half, MAX_CELLS))
    }

    fn from_design(n: usize, mut members: Design) -> Self {
        // block numbers must fit an ordering key; any subset of blocks still gives bounds
        members.truncate(BLOCK_MASK as usize - 1);
        let counts = members
            .iter()
            .map(|m| vec![0u64; m.iter().map(|e| e.1).product()])
            .collect();
        let mut block = vec![usize::MAX; n];
        let mut disjoint = true;
        for (b, m) in members.iter().enumerate() {
            for &(i, _) in m {
                disjoint &= block[i] == usize::MAX;
                block[i] = b;
            }
        }
        // overlapping blocks: players with the same set of blocks outside them share a segment
        let mut outside: Vec<Vec<usize>> = Vec::new();
        let mut segment = Vec::new();
        if !disjoint {
            for i in 0..n {
                let out: Vec<usize> = (0..members.len())
                    .filter(|&b| members[b].iter().all(|&(j, _)| j != i))
                    .collect();
                let s = match outside.iter().position(|o| *o == out) {
                    Some(s) => s,
                    None => {
                        outside.push(out);
                        outside.len() - 1
                    }
                };
                segment.push(s);
            }
            block.clear();
        }
        let cells: usize = members
            .iter()
            .map(|m| m.iter().map(|e| e.1).product::<usize>())
            .sum();
        let strides: Vec<Vec<(usize, usize)>> = members
            .iter()
            .map(|m| {
                m.iter()
                    .scan(1usize, |place, &(i, k)| {
                        let here = *place;
                        *place *= k;
                        Some((i, here))
                    })
                    .collect()
            })
            .collect();
        // at most LANES blocks: each block member's digit d adds d * place to its cells
        let lanes = (members.len() <= LANES
            && members
                .iter()
                .all(|m| m.iter().map(|e| e.1).product::<usize>() <= u32::MAX as usize))
        .then(|| {
            let mut place = vec![[0u32; LANES]; n];
            for (b, m) in strides.iter().enumerate() {
                for &(i, p) in m {
                    place[i][b] = p as u32;
                }
            }
            let mut rows = Vec::new();
            let mut players = Vec::new();
            for (i, pl) in place.iter().enumerate() {
                if pl.iter().any(|&p| p > 0) {
                    players.push((i, rows.len()));
                    let k = members
                        .iter()
                        .flatten()
                        .find(|e| e.0 == i)
                        .map_or(1, |e| e.1);
                    rows.extend((0..k as u32).map(|d| pl.map(|p| p * d)));
                }
            }
            Lanes { rows, players }
        });
        Self {
            fields: None,
            unbounded: outside.iter().any(Vec::is_empty),
            lanes,
            strides,
            large: cells > 1 << 16,
            today: vec![0; members.len()],
            bound: vec![NO_BOUND; outside.len()],
            least: [NO_BOUND; 2],
            members,
            counts,
            block,
            segment,
            outside,
        }
    }

    /// Reads cells off packed profile keys of `layout` from now on when every block allows
    /// it: each member's number of types a power of two (its digit then takes exactly its
    /// share of the cell number) and the members' digits adjacent, in order, in one word.
    pub fn use_key_fields(&mut self, layout: &KeyLayout) {
        let fields: Option<Vec<Field>> = self
            .members
            .iter()
            .map(|m| {
                let (word, shift) = layout.locate(m.first()?.0);
                let (mut w, mut next) = (word, shift);
                for &(i, k) in m {
                    if next == 64 {
                        // a full word continues at the start of the next one
                        (w, next) = (w + 1, 0);
                    }
                    if !k.is_power_of_two() || layout.locate(i) != (w, next) {
                        return None;
                    }
                    next += k.trailing_zeros();
                }
                let bits = (w - word) as u32 * 64 + next - shift;
                (bits < 64 && w <= word + 1).then(|| Field {
                    word,
                    shift,
                    mask: (1u64 << bits) - 1,
                    cross: w > word,
                })
            })
            .collect();
        self.fields = fields;
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Block `b`'s count of the last added profile's cell.
    #[inline(always)]
    pub fn today(&self, b: usize) -> u64 {
        self.today[b]
    }

    /// Upper bound on M_i(d_-i) for `player` and the last added profile d, and the block
    /// giving it (`usize::MAX`: none); overlapping blocks need [`Self::settle`] first.
    #[inline(always)]
    pub fn bound_of(&self, player: usize) -> (u64, usize) {
        let packed = if self.block.is_empty() {
            self.bound[self.segment[player]]
        } else if self.block[player] == (self.least[0] & BLOCK_MASK) as usize {
            self.least[1]
        } else {
            self.least[0]
        };
        self.unpack(packed)
    }

    /// The count and block of an ordering key.
    #[inline(always)]
    fn unpack(&self, packed: u64) -> (u64, usize) {
        if packed == NO_BOUND {
            (u64::MAX, usize::MAX)
        } else {
            let b = (packed & BLOCK_MASK) as usize;
            (self.today[b], b)
        }
    }

    /// The cells of the profile whose player i bids `bid(i)`, in the first [`LANES`] blocks'
    /// tables (when there are at most [`LANES`] blocks; see [`Self::add_cells`]), with a
    /// prefetch of each when the tables are large (a hint only).
    #[inline(always)]
    pub fn cells(&self, bid: impl Fn(usize) -> usize) -> Cells {
        let mut cells = [0u32; LANES];
        if self.fields.is_some() && !self.large {
            // cells come from the key when they are added
        } else if let Some(lanes) = &self.lanes {
            for &(i, start) in &lanes.players {
                let row = lanes.rows[start + bid(i)];
                for (c, r) in cells.iter_mut().zip(row) {
                    *c += r;
                }
            }
            if self.large {
                for (counts, &c) in self.counts.iter().zip(&cells) {
                    super::prefetch_read(counts.as_ptr().wrapping_add(c as usize));
                }
            }
        } else if self.large {
            for (counts, strides) in self.counts.iter().zip(&self.strides) {
                let cell = strides.iter().map(|&(i, s)| bid(i) * s).sum::<usize>();
                super::prefetch_read(counts.as_ptr().wrapping_add(cell));
            }
        }
        cells
    }

    /// Adds `by` days of the profile whose player i bid `bid(i)` and returns the largest
    /// bound any player gets from it.
    #[inline(always)]
    pub fn add(&mut self, bid: impl Fn(usize) -> usize, by: u64) -> u64 {
        let cells = self.cells(&bid);
        self.add_cells(&cells, bid, None, by);
        self.settle()
    }

    /// [`Self::add`] with the profile's `cells` from [`Self::cells`] (computed ahead), up to
    /// the bounds: returns an upper bound on the largest bound any player gets, exact for
    /// disjoint blocks. Overlapping blocks' bounds need [`Self::settle`] before they are read.
    #[inline(always)]
    pub fn add_cells(
        &mut self,
        cells: &Cells,
        bid: impl Fn(usize) -> usize,
        key: Option<&[u64]>,
        by: u64,
    ) -> u64 {
        // the two smallest ordering keys, without branches (the counts are random)
        let [mut first, mut second] = [NO_BOUND; 2];
        let mut largest = 0;
        let mut note = |b: usize, c: u64| {
            let key = order_key(c, b);
            second = second.min(key.max(first));
            first = first.min(key);
            largest = largest.max(c);
        };
        if let (Some(fields), Some(key)) = (&self.fields, key) {
            for (b, (counts, field)) in self.counts.iter_mut().zip(fields).enumerate() {
                let slot = &mut counts[field.cell(key)];
                *slot += by;
                self.today[b] = *slot;
                note(b, *slot);
            }
        } else if self.lanes.is_some() {
            for (b, (counts, &cell)) in self.counts.iter_mut().zip(cells).enumerate() {
                let slot = &mut counts[cell as usize];
                *slot += by;
                self.today[b] = *slot;
                note(b, *slot);
            }
        } else {
            for (b, (counts, strides)) in self.counts.iter_mut().zip(&self.strides).enumerate() {
                // mixed-radix cell of the block's sub-profile, first member least significant
                let cell = strides.iter().map(|&(i, s)| bid(i) * s).sum::<usize>();
                let slot = &mut counts[cell];
                *slot += by;
                self.today[b] = *slot;
                note(b, *slot);
            }
        }
        self.least = [first, second];
        if !self.block.is_empty() || self.members.is_empty() {
            self.unpack(second).0
        } else if self.unbounded {
            u64::MAX
        } else {
            // every player's bound is some block's count
            largest
        }
    }

    /// Each segment's bound from the last added profile (overlapping blocks); returns the
    /// largest bound any player gets from it.
    #[inline]
    pub fn settle(&mut self) -> u64 {
        if !self.block.is_empty() || self.members.is_empty() {
            return self.unpack(self.least[1]).0;
        }
        let mut loosest = 0;
        for (bound, outside) in self.bound.iter_mut().zip(&self.outside) {
            *bound = outside
                .iter()
                .map(|&b| order_key(self.today[b], b))
                .fold(NO_BOUND, u64::min);
            // a segment with no block outside it has no bound
            loosest = loosest.max(match *bound {
                NO_BOUND => u64::MAX,
                key => self.today[(key & BLOCK_MASK) as usize],
            });
        }
        loosest
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.counts.iter().map(|c| c.capacity() * 8).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random profiles from per-player pmfs `theta`; checks every player's bound against the
    /// group counts and the loosest bound against every player's.
    fn check_bounds(theta: &[Vec<f64>], days: usize) {
        use std::collections::HashMap;
        let n = theta.len();
        let ks: Vec<usize> = theta.iter().map(Vec::len).collect();
        let largest: Vec<f64> = theta
            .iter()
            .map(|r| r.iter().cloned().fold(0.0, f64::max))
            .collect();
        let mut blocks = BlockCounts::new(&ks, &largest);
        let mut groups: Vec<HashMap<Vec<u32>, u64>> = vec![HashMap::new(); n];
        let mut s = 7u64;
        for _ in 0..days {
            let profile: Vec<u32> = theta
                .iter()
                .map(|row| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                    let mut acc = 0.0;
                    row.iter()
                        .position(|&p| {
                            acc += p;
                            u < acc
                        })
                        .unwrap_or(row.len() - 1) as u32
                })
                .collect();
            let loosest = blocks.add(|i| profile[i] as usize, 1);
            for i in 0..n {
                let mut g = profile.clone();
                g[i] = u32::MAX;
                let m = groups[i].entry(g).or_insert(0);
                *m += 1;
                let (bound, b) = blocks.bound_of(i);
                assert!(*m <= bound, "player {i}: M = {m} > bound {bound}");
                assert!(bound <= loosest);
                if b != usize::MAX {
                    assert_eq!(blocks.today(b), bound);
                    assert!(blocks.members[b].iter().all(|&(j, _)| j != i));
                }
            }
        }
    }

    #[test]
    fn bounds_dominate_group_counts() {
        check_bounds(&vec![vec![1.0 / 3.0; 3]; 7], 5000);
    }

    #[test]
    fn skewed_supertypes_get_overlapping_windows_that_still_bound() {
        let row = vec![0.7, 0.1, 0.1, 0.05, 0.05];
        let ks = vec![5; 10];
        let blocks = BlockCounts::new(&ks, &[0.7; 10]);
        // more blocks than a partition into two, each larger than five players
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        assert!(blocks.members.iter().all(|b| b.len() > 5));
        check_bounds(&vec![row; 10], 5000);
    }

    #[test]
    fn skewed_many_players_get_larger_consecutive_blocks() {
        let blocks = BlockCounts::new(&[4; 30], &[0.9; 30]);
        assert!(blocks.members.iter().any(|b| b.len() > 6));
        let row = vec![0.9, 0.05, 0.03, 0.02];
        check_bounds(&vec![row; 30], 3000);
    }

    #[test]
    fn ragged_and_single_type_players_are_bounded() {
        let theta = vec![
            vec![1.0],
            vec![0.5, 0.5],
            vec![0.8, 0.1, 0.1],
            vec![1.0],
            vec![0.6, 0.2, 0.1, 0.1],
            vec![0.9, 0.1],
        ];
        check_bounds(&theta, 4000);
    }

    #[test]
    fn cells_read_off_packed_keys_match_digits() {
        // 2-bit digits fill words exactly, so a block crosses from word 0 into word 1; the
        // mixed cases have single-type players (no bits) and a player that is in no block
        let cases: [Vec<usize>; 3] = [
            vec![4; 50],
            [vec![2, 1, 4, 8, 16, 1, 2, 2], vec![4; 40]].concat(),
            vec![2, 8, 4, 4, 2, 16, 1 << 13],
        ];
        for ks in cases {
            let layout = KeyLayout::new(&ks).unwrap();
            // unlikely cells: the first split, consecutive blocks in player order
            let mut plain = BlockCounts::new(&ks, &vec![0.01; ks.len()]);
            let mut fields = plain.clone();
            fields.use_key_fields(&layout);
            assert!(fields.fields.is_some(), "{ks:?}: no fields");
            if ks.len() == 50 {
                assert!(fields.fields.as_ref().unwrap().iter().any(|f| f.cross));
            }
            let mut s = 11u64;
            for _ in 0..3000 {
                let profile: Vec<u32> = ks
                    .iter()
                    .map(|&k| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s % k as u64) as u32
                    })
                    .collect();
                let key: [u64; 2] = layout.pack(&profile);
                let bid = |i: usize| profile[i] as usize;
                let a = plain.add(bid, 1);
                let cells = fields.cells(bid);
                fields.add_cells(&cells, bid, Some(&key), 1);
                assert_eq!(fields.settle(), a);
                assert_eq!(fields.today, plain.today);
                for i in 0..ks.len() {
                    assert_eq!(fields.bound_of(i), plain.bound_of(i));
                }
            }
        }
    }

    #[test]
    fn single_player_has_no_bound() {
        let mut blocks = BlockCounts::new(&[4], &[0.25]);
        blocks.add(|_| 2, 1);
        assert_eq!(blocks.bound_of(0), (u64::MAX, usize::MAX));
    }
}
