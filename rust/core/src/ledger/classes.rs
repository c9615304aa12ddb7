//! Count-vector classes: how the complete mode keeps every group of a player.
//!
//! A group's numerator v(g) = max_t |c_t - theta_t M| depends on the group only through its
//! count vector c = (c_0, ..., c_{K-1}) (M = sum_t c_t). So the groups are interned by count
//! vector: a *class* is a distinct count vector held by at least one group, with its
//! *population* (how many groups hold it), and the live classes sit in an indexed max-heap by v.
//! A group is then just a key and a class id ([`super::table::GroupTable`]), and
//! max_g v(g) = max over live classes.
//!
//! A day moves one group of each player from its class c to c + e_t. The class of c + e_t is
//! found through a hash index of the live classes: the hash of a count vector is linear,
//! sum_t c_t R_t (mod 2^64) with fixed random R_t, so the hash of c + e_t is one addition
//! away, and a match is confirmed by comparing the vectors (a hash is never trusted alone).
//! When no class holds c + e_t, a new class is made, except when the group was alone in its
//! class: that class is then rewritten in place (a group seen often enough to have a count
//! vector of its own changes class every day, and would otherwise make and drop a class a day)
//! and leaves the index: such a *private* class is reached only through its one group, so the
//! rewrite costs no index maintenance. A private class may share its vector with another class
//! (two classes, one vector: harmless, v is the same) until its group joins an indexed class
//! on a later day. A class whose population drops to 0 leaves the index (if it is there) and
//! the heap at once and its id is reused, so live classes never outnumber groups, and nothing
//! can reach a reclaimed class (there are no links to classes besides the groups' own slots
//! and the index).
//!
//! Most groups share a handful of small count vectors when the groups are many (at n = 10,
//! K = 5 and 10^6 days nearly every group has M <= 5), so besides the group's table slot a day
//! touches only small, cache-resident structures, and the heap changes only when a class is
//! made, rewritten or reclaimed.

use super::counts::CountStore;
use super::heap::IndexedMaxHeap;

/// SplitMix64 finaliser.
#[inline(always)]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Marker of an empty index slot.
const EMPTY: u32 = u32::MAX;

/// Open-addressing index of live classes by the hash of their count vector.
#[derive(Clone)]
struct ClassIndex {
    /// (vector hash, class id); id `EMPTY` marks an empty slot.
    slots: Vec<(u64, u32)>,
    shift: u32,
    len: usize,
}

impl ClassIndex {
    fn with_log2(log2: u32) -> Self {
        Self {
            slots: vec![(0, EMPTY); 1 << log2],
            shift: 64 - log2,
            len: 0,
        }
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (mix(hash) >> self.shift) as usize
    }

    /// The class with vector hash `hash` for which `is` holds.
    #[inline(always)]
    fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash);
        loop {
            let (h, id) = self.slots[idx];
            if id == EMPTY {
                return None;
            }
            if h == hash && is(id) {
                return Some(id);
            }
            idx = (idx + 1) & mask;
        }
    }

    #[inline]
    fn insert(&mut self, hash: u64, id: u32) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash);
        while self.slots[idx].1 != EMPTY {
            idx = (idx + 1) & mask;
        }
        self.slots[idx] = (hash, id);
        self.len += 1;
    }

    /// Removes class `id` (present, with vector hash `hash`), shifting later entries of its
    /// probe run back so that no tombstones are needed.
    #[inline]
    fn remove(&mut self, hash: u64, id: u32) {
        let mask = self.slots.len() - 1;
        let mut hole = self.home(hash);
        while self.slots[hole].1 != id {
            if self.slots[hole].1 == EMPTY {
                debug_assert!(false, "class {id} is not in the index");
                return;
            }
            hole = (hole + 1) & mask;
        }
        let mut idx = hole;
        loop {
            idx = (idx + 1) & mask;
            let (h, next) = self.slots[idx];
            if next == EMPTY {
                break;
            }
            // the entry at idx may fill the hole unless its home lies cyclically in (hole, idx]
            let home = self.home(h);
            let stays = if hole <= idx {
                hole < home && home <= idx
            } else {
                hole < home || home <= idx
            };
            if !stays {
                self.slots[hole] = (h, next);
                hole = idx;
            }
        }
        self.slots[hole] = (0, EMPTY);
        self.len -= 1;
    }

    #[cold]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        *self = Self::with_log2(old.len().trailing_zeros() + 1);
        for (h, id) in old.into_iter().filter(|e| e.1 != EMPTY) {
            self.insert(h, id);
        }
    }

    fn nbytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<(u64, u32)>()
    }
}

/// The live count-vector classes of one player's groups (see the module docs).
#[derive(Clone)]
pub struct Classes<C> {
    /// Count vector of each class id (live or free).
    counts: C,
    /// Groups holding each class id (0 for free ids).
    population: Vec<u64>,
    /// Vector hash of each class id.
    hash: Vec<u64>,
    /// Whether each class id is in the index (false: private or free).
    indexed: Vec<bool>,
    /// R_t of the vector hash.
    weight: Vec<u64>,
    /// Reclaimed ids, reused first.
    free: Vec<u32>,
    index: ClassIndex,
    /// An upper bound on M over the indexed classes (reset when the index empties): a vector
    /// with a larger M is not in the index, and the lookup can be skipped.
    indexed_m_max: u64,
    /// Live classes by v.
    heap: IndexedMaxHeap,
    /// What [`Self::exact_max_cached`] evaluates, kept while the top band is unchanged.
    band: BandCache,
}

/// The terms of [`Classes::exact_max`] that can be its maximum, kept from one call to the
/// next while no class with v in the top band (or entering it) changes.
///
/// The exact maximum is max over the band's classes and all types of
/// |c_t / l - theta_t (M / l)|. Within a class, a type whose scaled value |c_t - theta_t M| is
/// below the class's v by more than [`TERM_SLACK`] M cannot be the class's maximum (rounding
/// moves either side by under 1e-14 M / l), so only the other types are kept, and a term
/// depends on (c_t, M, theta_t) alone: equal triples (classes that are permutations of one
/// another under equal theta_t, or a private class sharing an indexed class's vector) are
/// kept once. The terms depend on l only through the division, so they stay valid until the
/// band changes: any heap change whose old or new value reaches `low` (the band's lower edge
/// when the terms were gathered) clears them, and a change below `low` can neither enter the
/// band nor move its top.
#[derive(Clone, Default)]
struct BandCache {
    valid: bool,
    /// The band held more than [`BAND_CACHE_MAX`] classes: no terms are kept, and
    /// [`Classes::exact_max`] is evaluated in full until the band changes.
    too_many: bool,
    low: f64,
    /// Distinct (c_t, M, theta_t), as f64.
    terms: Vec<(f64, f64, f64)>,
    /// Calls the current terms served. Terms dropped after serving one call are not worth
    /// gathering (a band that changes every day, as with a few huge groups): the next
    /// [`VOLATILE_SKIP`] calls then evaluate [`Classes::exact_max`] directly.
    served: u32,
    /// Direct evaluations left before terms are gathered again.
    direct: u32,
}

/// Calls evaluated directly after terms served only one call.
const VOLATILE_SKIP: u32 = 8;

/// A type whose |c_t - theta_t M| is below its class's v by more than `TERM_SLACK * M` is not
/// the class's exact maximum (the two computations differ by under 2e-15 M in scaled units).
const TERM_SLACK: f64 = 1e-13;
/// Relative width of the band of classes whose exact values are all compared.
const BAND_WIDTH: f64 = 1e-12;
/// Largest number of band classes, and of terms, kept (beyond it, no caching).
const BAND_CACHE_MAX: usize = 64;

impl BandCache {
    /// Forgets the terms when a heap value moves from `old` to `new` (`None`: absent) and
    /// either side reaches the band.
    #[inline(always)]
    fn touch(&mut self, old: Option<f64>, new: Option<f64>) {
        if self.valid && (old.is_some_and(|v| v >= self.low) || new.is_some_and(|v| v >= self.low))
        {
            self.valid = false;
        }
    }
}

impl<C: CountStore> Classes<C> {
    /// No classes, for `k` types.
    pub fn new(k: usize) -> Self {
        Self {
            counts: C::new(k),
            population: Vec::new(),
            hash: Vec::new(),
            indexed: Vec::new(),
            weight: (0..k as u64)
                .map(|t| mix(t.wrapping_add(0x05EE_DC1A_55E5_u64)) | 1)
                .collect(),
            free: Vec::new(),
            index: ClassIndex::with_log2(4),
            indexed_m_max: 0,
            heap: IndexedMaxHeap::default(),
            band: BandCache::default(),
        }
    }

    /// Number of live classes.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.population.len() - self.free.len()
    }

    /// The live class with the largest v, as (v, class).
    #[inline(always)]
    pub fn top(&self) -> Option<(f64, u32)> {
        self.heap.top()
    }

    /// Groups in class `c` (0 once reclaimed).
    #[cfg(test)]
    pub fn population(&self, c: u32) -> u64 {
        self.population[c as usize]
    }

    /// The per-class count store (M = total, c_t = count).
    pub fn counts(&self) -> &C {
        &self.counts
    }

    /// A new group with `by` days of type `t`: returns its class.
    #[inline(always)]
    pub fn enter(&mut self, t: u32, by: u64, theta: &[f64], theta_desc: &[u32]) -> u32 {
        let hash = by.wrapping_mul(self.weight[t as usize]);
        match self.lookup(hash, None, t, by) {
            Some(b) => {
                self.population[b as usize] += 1;
                b
            }
            None => self.make(None, t, by, hash, theta, theta_desc),
        }
    }

    /// A group of class `a` gets `by` more days of type `t`: returns its new class.
    #[inline(always)]
    pub fn step(&mut self, a: u32, t: u32, by: u64, theta: &[f64], theta_desc: &[u32]) -> u32 {
        let hash = self.hash[a as usize].wrapping_add(by.wrapping_mul(self.weight[t as usize]));
        match self.lookup(hash, Some(a), t, by) {
            Some(b) => {
                self.population[b as usize] += 1;
                self.leave(a);
                b
            }
            None if self.population[a as usize] == 1 => {
                // the group was alone: its class becomes c + by e_t in place, privately
                if self.indexed[a as usize] {
                    self.unindex(a);
                }
                self.counts.add(a, t, by);
                self.hash[a as usize] = hash;
                let v = self.counts.discrepancy(a, theta, theta_desc);
                self.band.touch(Some(self.heap.value(a)), Some(v));
                self.heap.update(a, v);
                a
            }
            None => {
                self.population[a as usize] -= 1;
                self.make(Some(a), t, by, hash, theta, theta_desc)
            }
        }
    }

    /// The indexed class whose vector is that of `base` (`None`: zero) plus `by` of type `t`;
    /// `hash` is that vector's hash.
    #[inline(always)]
    fn lookup(&self, hash: u64, base: Option<u32>, t: u32, by: u64) -> Option<u32> {
        let m = base.map_or(0, |a| self.counts.total(a)).saturating_add(by);
        if m > self.indexed_m_max {
            return None;
        }
        let counts = &self.counts;
        self.index.find(hash, |b| counts.is_step_of(b, base, t, by))
    }

    /// Removes class `a` from the index.
    #[inline(always)]
    fn unindex(&mut self, a: u32) {
        self.index.remove(self.hash[a as usize], a);
        self.indexed[a as usize] = false;
        if self.index.len == 0 {
            self.indexed_m_max = 0;
        }
    }

    /// One group leaves class `a`; an emptied class is reclaimed.
    #[inline(always)]
    fn leave(&mut self, a: u32) {
        self.population[a as usize] -= 1;
        if self.population[a as usize] == 0 {
            if self.indexed[a as usize] {
                self.unindex(a);
            }
            self.band.touch(Some(self.heap.value(a)), None);
            self.heap.remove(a);
            self.free.push(a);
        }
    }

    /// A new class holding one group, with the vector of `base` plus `by` of type `t`.
    #[inline(never)]
    fn make(
        &mut self,
        base: Option<u32>,
        t: u32,
        by: u64,
        hash: u64,
        theta: &[f64],
        theta_desc: &[u32],
    ) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.population.push(0);
                self.hash.push(0);
                self.indexed.push(false);
                self.counts.push_group()
            }
        };
        self.counts.assign(id, base);
        self.counts.add(id, t, by);
        self.population[id as usize] = 1;
        self.hash[id as usize] = hash;
        self.indexed[id as usize] = true;
        self.index.insert(hash, id);
        self.indexed_m_max = self.indexed_m_max.max(self.counts.total(id));
        self.heap.register(id);
        let v = self.counts.discrepancy(id, theta, theta_desc);
        self.band.touch(None, Some(v));
        self.heap.push(id, v);
        id
    }

    /// max over live classes of max_t |c_t / l - theta_t (M / l)|, as eq. (8) reads (0 without
    /// classes). Classes whose scaled v is within a relative 1e-12 of the top's are all
    /// evaluated: their exact values can differ in the last bits, and taking the largest makes
    /// the result equal to the dense maximum whatever order the classes were created in (so a
    /// saved and restored ledger reports the same bits). Any class below that band is smaller
    /// by far more than rounding.
    #[inline(always)]
    pub fn exact_max(&self, theta: &[f64], lf: f64) -> f64 {
        let Some((top, g)) = self.heap.top() else {
            return 0.0;
        };
        let mut best = self.counts.exact_stat(g, theta, lf);
        let band = top * (1.0 - BAND_WIDTH);
        self.heap.visit_at_least(band, usize::MAX, &mut |c| {
            if c != g {
                best = best.max(self.counts.exact_stat(c, theta, lf));
            }
        });
        best
    }

    /// [`Self::exact_max`], bit for bit, from terms kept while the top band is unchanged
    /// (see [`BandCache`]): usually one or two divisions per distinct term.
    #[inline(always)]
    pub fn exact_max_cached(&mut self, theta: &[f64], lf: f64) -> f64 {
        if !self.band.valid {
            if self.band.direct > 0 {
                self.band.direct -= 1;
                return self.exact_max(theta, lf);
            }
            if self.band.served == 1 {
                // the last terms served one call: the band is volatile, skip gathering a while
                self.band.served = 0;
                self.band.direct = VOLATILE_SKIP - 1;
                return self.exact_max(theta, lf);
            }
            self.gather_band(theta);
        }
        if self.band.too_many {
            return self.exact_max(theta, lf);
        }
        self.band.served = self.band.served.saturating_add(1);
        let mut best = 0.0f64;
        for &(c, m, p) in &self.band.terms {
            best = best.max((c / lf - p * (m / lf)).abs());
        }
        best
    }

    /// Gathers the terms of the current band (none when it holds too many classes).
    #[cold]
    #[inline(never)]
    fn gather_band(&mut self, theta: &[f64]) {
        let mut terms = std::mem::take(&mut self.band.terms);
        terms.clear();
        let (low, too_many) = match self.heap.top() {
            // no classes: the maximum is 0 (no terms) until a class is made
            None => (f64::NEG_INFINITY, false),
            Some((top, _)) => {
                let low = top * (1.0 - BAND_WIDTH);
                let (counts, heap) = (&self.counts, &self.heap);
                let visited = heap.visit_at_least(low, BAND_CACHE_MAX + 1, &mut |class| {
                    if terms.len() > BAND_CACHE_MAX {
                        return;
                    }
                    let mf = counts.total(class) as f64;
                    let v = heap.value(class);
                    for (t, &p) in theta.iter().enumerate() {
                        let c = counts.count(class, t as u32) as f64;
                        if (c - p * mf).abs() < v - TERM_SLACK * mf {
                            continue;
                        }
                        let same = |e: &(f64, f64, f64)| {
                            e.0 == c && e.1 == mf && e.2.to_bits() == p.to_bits()
                        };
                        if !terms.iter().any(same) {
                            terms.push((c, mf, p));
                        }
                    }
                });
                (
                    low,
                    visited > BAND_CACHE_MAX || terms.len() > BAND_CACHE_MAX,
                )
            }
        };
        if too_many {
            terms.clear();
        }
        self.band = BandCache {
            valid: true,
            too_many,
            low,
            terms,
            served: 0,
            direct: 0,
        };
    }

    /// Whether a live class with v >= `lo` has exact statistic >= `r` (cold path).
    pub fn any_exact_at_least(&self, lo: f64, theta: &[f64], lf: f64, r: f64) -> bool {
        let mut hit = false;
        self.heap.visit_at_least(lo, usize::MAX, &mut |g| {
            hit = hit || self.counts.exact_stat(g, theta, lf) >= r;
        });
        hit
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.counts.nbytes()
            + self.population.capacity() * 8
            + self.hash.capacity() * 8
            + self.indexed.capacity()
            + self.weight.capacity() * 8
            + self.free.capacity() * 4
            + self.index.nbytes()
            + self.heap.nbytes()
    }

    /// Checks every invariant against the groups' count vectors and classes (tests only).
    #[cfg(test)]
    pub fn check(&self, theta: &[f64], theta_desc: &[u32], groups: &[(Vec<u64>, u32)]) {
        let k = self.weight.len();
        let mut members = vec![0u64; self.population.len()];
        for (vector, class) in groups {
            members[*class as usize] += 1;
            assert!((0..k).all(|t| self.counts.count(*class, t as u32) == vector[t]));
        }
        assert_eq!(members, self.population, "populations");
        assert_eq!(self.heap.members().len(), self.live());
        assert_eq!(self.index.len, self.indexed.iter().filter(|&&x| x).count());
        let mut vectors = std::collections::HashSet::new();
        for id in 0..self.population.len() as u32 {
            let live = self.population[id as usize] > 0;
            assert_eq!(live, !self.free.contains(&id));
            assert!(live || !self.indexed[id as usize]);
            if !live {
                continue;
            }
            let vector: Vec<u64> = (0..k).map(|t| self.counts.count(id, t as u32)).collect();
            let hash = vector
                .iter()
                .zip(&self.weight)
                .fold(0u64, |h, (&c, &w)| h.wrapping_add(c.wrapping_mul(w)));
            assert_eq!(self.hash[id as usize], hash);
            assert_eq!(self.counts.total(id), vector.iter().sum::<u64>());
            let v = self.counts.discrepancy(id, theta, theta_desc);
            assert!(self.heap.members().contains(&(v, id)));
            if self.indexed[id as usize] {
                assert_eq!(self.index.find(hash, |b| b == id), Some(id));
                assert!(self.counts.total(id) <= self.indexed_m_max);
                // indexed classes have distinct vectors; private ones hold one group
                assert!(vectors.insert(vector), "two indexed classes share a vector");
            } else {
                assert_eq!(self.population[id as usize], 1, "a private class is shared");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::counts::{DenseCounts, SparseCounts};
    use super::*;
    use std::collections::HashMap;

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix(self.0) % n
        }
    }

    /// Random groups moving between classes, checked against plain per-group count vectors.
    fn exercise<C: CountStore>(k: usize, groups: usize, steps: usize, seed: u64) {
        let theta: Vec<f64> = (0..k).map(|t| (t + 1) as f64).collect();
        let total: f64 = theta.iter().sum();
        let theta: Vec<f64> = theta.iter().map(|p| p / total).collect();
        exercise_with::<C>(&theta, groups, steps, seed);
    }

    fn exercise_with<C: CountStore>(theta: &[f64], groups: usize, steps: usize, seed: u64) {
        let k = theta.len();
        let mut desc: Vec<u32> = (0..k as u32).collect();
        desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
        let theta = theta.to_vec();
        let mut classes = Classes::<C>::new(k);
        let mut member: Vec<Option<u32>> = vec![None; groups];
        let mut vectors: Vec<Vec<u64>> = vec![vec![0; k]; groups];
        let mut rng = Rng(seed);
        for step in 0..steps {
            let g = rng.below(groups as u64) as usize;
            let t = rng.below(k as u64) as u32;
            let by = 1 + rng.below(3) * (step % 2) as u64;
            vectors[g][t as usize] += by;
            member[g] = Some(match member[g] {
                None => classes.enter(t, by, &theta, &desc),
                Some(a) => classes.step(a, t, by, &theta, &desc),
            });
            let c = member[g].unwrap();
            assert!((0..k).all(|s| classes.counts().count(c, s as u32) == vectors[g][s]));
            // the cached maximum is the full one, bit for bit, whatever changed since the
            // terms were gathered (some days are skipped so that changes accumulate)
            if rng.below(3) > 0 {
                let lf = (step + 1) as f64 * 1.7;
                let cached = classes.exact_max_cached(&theta, lf);
                let full = classes.exact_max(&theta, lf);
                assert_eq!(cached.to_bits(), full.to_bits(), "step {step}");
            }
            if step % 97 == 0 || step + 1 == steps {
                let held: Vec<(Vec<u64>, u32)> = member
                    .iter()
                    .zip(&vectors)
                    .filter_map(|(m, v)| m.map(|c| (v.clone(), c)))
                    .collect();
                classes.check(&theta, &desc, &held);
                // sharing: at most one class per distinct vector besides private singletons
                let distinct: std::collections::HashSet<&Vec<u64>> =
                    held.iter().map(|h| &h.0).collect();
                assert!(classes.live() <= held.len());
                assert!(classes.index.len <= distinct.len());
                // the exact maximum agrees with a scan over the groups
                let lf = (step + 1) as f64 * 3.0;
                let scan = member
                    .iter()
                    .flatten()
                    .map(|&c| classes.counts().exact_stat(c, &theta, lf))
                    .fold(0.0, f64::max);
                assert!((classes.exact_max(&theta, lf) - scan).abs() <= 1e-15 * scan);
            }
        }
    }

    #[test]
    fn many_groups_share_few_classes() {
        exercise::<DenseCounts>(3, 2000, 20_000, 1);
        exercise::<SparseCounts>(3, 2000, 20_000, 2);
    }

    #[test]
    fn cached_maxima_follow_the_band() {
        // equal probabilities: permuted count vectors tie, and their terms are shared
        exercise_with::<DenseCounts>(&[0.25; 4], 300, 20_000, 5);
        exercise_with::<DenseCounts>(&[0.5, 0.5], 3, 5_000, 6);
        exercise_with::<SparseCounts>(&[1.0 / 3.0; 3], 200, 10_000, 7);
        // one type: every class has v = 0, so the band holds every class (too many to keep)
        exercise_with::<DenseCounts>(&[1.0], 400, 5_000, 8);
        exercise_with::<DenseCounts>(&[0.1, 0.2, 0.7], 50, 10_000, 9);
        // a count c_t = M / 2 ties between types whose theta_t are symmetric about 1/2
        exercise_with::<DenseCounts>(&[0.2, 0.8], 20, 20_000, 10);
        exercise_with::<DenseCounts>(&[0.3, 0.7], 3, 20_000, 11);
    }

    #[test]
    fn reclaimed_top_class_leaves_the_cached_band() {
        let (theta, desc) = (vec![0.5, 0.5], vec![0u32, 1]);
        let mut classes = Classes::<DenseCounts>::new(2);
        let p = classes.enter(0, 2, &theta, &desc); // (2, 0), v = 1
        let q = classes.enter(1, 1, &theta, &desc); // (0, 1), v = 0.5
        assert_eq!(classes.enter(1, 1, &theta, &desc), q);
        let z = classes.step(q, 0, 2, &theta, &desc); // a new, shared (2, 1), v = 0.5
        assert_ne!(z, q);
        let lf = 10.0;
        assert_eq!(classes.exact_max_cached(&theta, lf), 0.1);
        // p's one group joins z: p is reclaimed and the top falls to 0.5
        assert_eq!(classes.step(p, 1, 1, &theta, &desc), z);
        assert_eq!(classes.population(p), 0);
        let full = classes.exact_max(&theta, lf);
        assert!((full - 0.05).abs() < 1e-15, "{full}");
        assert_eq!(
            classes.exact_max_cached(&theta, lf).to_bits(),
            full.to_bits()
        );
    }

    #[test]
    fn cached_terms_of_one_class_cover_near_ties() {
        // one group whose count vector sits near theta M with deviations of equal size: its
        // types' scaled values tie up to rounding, and any of them may hold the exact maximum
        let mut rng = Rng(31);
        for case in 0..20_000u64 {
            let k = 2 + (case % 4) as usize;
            let raw: Vec<f64> = (0..k).map(|_| 1.0 + rng.below(1000) as f64).collect();
            let total: f64 = raw.iter().sum();
            let theta: Vec<f64> = raw.iter().map(|x| x / total).collect();
            let mut desc: Vec<u32> = (0..k as u32).collect();
            desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
            let m = 1 + rng.below(1 << (4 + case % 30));
            let d = rng.below(3);
            let mut classes = Classes::<DenseCounts>::new(k);
            let mut class = None;
            for (t, &p) in theta.iter().enumerate() {
                let c = (p * m as f64).round() as u64;
                let c = if rng.below(2) == 0 {
                    c + d
                } else {
                    c.saturating_sub(d)
                };
                if c > 0 {
                    class = Some(match class {
                        None => classes.enter(t as u32, c, &theta, &desc),
                        Some(a) => classes.step(a, t as u32, c, &theta, &desc),
                    });
                }
            }
            for _ in 0..4 {
                let lf = (m + rng.below(1 << 40)) as f64;
                let full = classes.exact_max(&theta, lf);
                assert_eq!(
                    classes.exact_max_cached(&theta, lf).to_bits(),
                    full.to_bits()
                );
            }
        }
    }

    #[test]
    fn few_groups_rewrite_their_classes() {
        // two groups and long streams: every step makes a new count vector; ids are reused
        for seed in 0..3 {
            exercise::<DenseCounts>(3, 2, 5000, seed);
            exercise::<SparseCounts>(40, 3, 5000, seed);
        }
        let (theta, desc) = (vec![0.5, 0.5], vec![0u32, 1]);
        let mut classes = Classes::<DenseCounts>::new(2);
        let mut a = classes.enter(0, 1, &theta, &desc);
        let mut b = classes.enter(0, 1, &theta, &desc);
        assert_eq!((a, classes.population(a)), (b, 2));
        for day in 0..100_000u64 {
            a = classes.step(a, (day % 2) as u32, 1, &theta, &desc);
            b = classes.step(b, (day % 3 % 2) as u32, 1, &theta, &desc);
        }
        assert!(classes.counts().len() <= 2, "classes leak");
        assert_eq!(classes.live(), 2);
    }

    #[test]
    fn index_removal_keeps_every_class_reachable() {
        let mut index = ClassIndex::with_log2(4);
        let mut live: HashMap<u32, u64> = HashMap::new();
        let mut rng = Rng(9);
        for id in 0..5000u32 {
            // few distinct hashes: long probe runs and equal hashes
            let hash = rng.below(40);
            index.insert(hash, id);
            live.insert(id, hash);
            if rng.below(2) == 0 {
                let victim = *live
                    .keys()
                    .nth(rng.below(live.len() as u64) as usize)
                    .unwrap();
                index.remove(live[&victim], victim);
                live.remove(&victim);
            }
            if id % 50 == 0 {
                assert_eq!(index.len, live.len());
                for (&id, &hash) in &live {
                    assert_eq!(index.find(hash, |c| c == id), Some(id));
                }
            }
        }
    }
}
