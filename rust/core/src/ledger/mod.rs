//! The bid ledger: running frequency (eq. 6) and joint-independence (eq. 8) statistics of
//! the type bids against the declared supertypes, and the penalty event E_i(l) of eq. (13).
//!
//! # How the joint statistic avoids Delta^n
//! For player i and a profile d = (t, g) with g = d_-i, h_{i,d}(l) = (c_t(g) - theta_i(t) M(g)) / l
//! where M(g) counts the days whose profile without i is g and c_t(g) those among them on which
//! i bid t. Profiles with M(g) = 0 give zero. The numerator v(g) = max_t |c_t - theta_t M| does
//! not depend on l and changes only when g is the day's profile without i, so one group per
//! player changes per day: an indexed max-heap over groups gives max_d |h_{i,d}(l)| = max_g v(g) / l
//! in O(K + log G) per player and day.
//!
//! # Flags without touching every group
//! Since v(g) <= M(g), a group with M(g) < l r(l) cannot fire, and l r(l) is increasing in l:
//! such a group cannot fire until it is touched again. Small dense *block counts* ([`blocks`])
//! bound M_i(d_-i) from above, for every player at once, from one increment per block a day.
//! A *keep floor* (at most today's l r(l), raised in steps) is kept below every tracked
//! group's M: when it is raised, the groups below it are purged. So a player whose bound is
//! below the keep floor has nothing to do that day (its group is untracked and cannot fire):
//! no group key is even built. Only a group whose bound reaches the floor is looked up among
//! the tracked ones (a small table), and if it is untracked its exact M and per-type counts
//! c_t(g) = J(g with t) are read back from the full-profile counts J; it is tracked (a record
//! of its counts and a place in the heap) when M reaches the floor. A group read back below
//! the floor is remembered with its M and that day's bound B: every later day of the group
//! has a bound of at least B (block counts only grow), so while B reaches the floor (which
//! only grows) none of its days is skipped and its M is counted exactly, without reading J
//! again; once the floor passes B, M <= M_then + (C_b - B) for the block b that gave B.
//! Untracked groups always had M below the threshold of the day they were last touched.
//! The blocks themselves are chosen from the declared supertypes (see [`blocks`]): larger,
//! overlapping ones when skewed supertypes make small blocks' likely cells reach the floor.
//!
//! J itself is read only to admit a group. In large profile spaces its additions wait (one
//! key a day in a buffer) until a group must be read back or the batch ends, and are then
//! made together ([`table::CountTable::add_batch`]), so a flags-only day usually touches
//! no large table at all; flags are evaluated only on days when a player's marginal quiet
//! period ends or some group is tracked.

//! # Exact maxima: every group, by count-vector class
//! When exact maxima are asked for, the ledger keeps every group from then on ("complete"),
//! and the light mode's tracked groups are dropped. Since v(g) depends on g only through its
//! count vector (c_t(g))_t, groups are interned by count vector ([`classes`]): each player has
//! a table from group key to class id ([`table::GroupTable`], one slot per group and nothing
//! else per group: 8 bytes when keys fit in 32 bits, W + 1 words otherwise) and a handful of
//! *classes*, each a distinct count vector with its population and a place in a small
//! max-heap of live classes. A day moves the group to the class of c + e_t (usually an
//! existing one) and reads the top of that heap: besides the group's prefetched table slot,
//! only small cache-resident structures are touched. Classes are reclaimed when their last
//! group leaves, and a class with a single group is rewritten in place, so a few huge groups
//! (small n) cost one class each, not one class a day. The reported maximum is that of the
//! class with the largest v, evaluated as eq. (8) reads, `max_t |c_t/l - theta_t (M/l)|`
//! (classes whose v ties with it agree to a few ulps). The terms (c_t, M, theta_t) that can be
//! that maximum are kept from day to day while no class in (or entering) the top band changes,
//! so a day usually costs one or two divisions per player (`classes::BandCache`); the
//! marginal maximum likewise divides only the types whose scaled value can be the largest.
//!
//! Memory is what this mode costs, and fresh memory is slow to obtain (every page is cleared
//! on first touch), so group tables grow 4-fold rather than 2-fold, never beyond what the
//! batch being recorded can add (one group per player and day, at most K^(n-1) in all); a
//! large batch estimates its new groups first (HyperLogLog over its group keys) and sizes each
//! table once. J is not read during a complete-mode batch: in large profile spaces its days
//! are added at the end, together.
//!
//! # Exactness
//! Flags are decided on scaled quantities against a cheap l r(l) with a relative safety band of
//! 1e-9; inside the band (a cold path) the statistic is recomputed exactly as eqs. (6)-(8) read,
//! `|N/l - theta|` and `|J/l - theta (M/l)|` against r(l) of eq. (11), so flags equal the dense
//! definition bit for bit.

/// Runs `$body` with `$l` bound to the concrete ledger behind an `Inner`.
macro_rules! dispatch {
    ($inner:expr, $l:ident => $body:expr) => {
        match $inner {
            Inner::D1($l) => $body,
            Inner::D2($l) => $body,
            Inner::D4($l) => $body,
            Inner::D8($l) => $body,
            Inner::S1($l) => $body,
            Inner::S2($l) => $body,
            Inner::S4($l) => $body,
            Inner::S8($l) => $body,
            Inner::WD($l) => $body,
            Inner::WS($l) => $body,
        }
    };
}

mod blocks;
mod classes;
mod counts;
pub mod digits;
mod heap;
pub mod key;
mod persist;
mod table;
mod wide;

use crate::error::{CoreError, CoreResult};
use crate::window::{check_gamma, scaled_threshold_fast, window};
use blocks::BlockCounts;
use classes::Classes;
use counts::{CountStore, DenseCounts, SparseCounts};
use digits::Digit;
use heap::IndexedMaxHeap;
use key::KeyLayout;
use std::collections::HashMap;
use table::{hash_key, CountTable, GroupTable};
use wide::WideLedger;

/// Relative safety band around the threshold inside which flags are decided exactly.
const BAND: f64 = 1e-9;

/// max_t |N_t - theta_t l| (the marginal statistic scaled by l), for ``l`` as a float.
#[inline(always)]
fn marginal_scaled(marginal: &[u64], theta: &[f64], lf: f64) -> f64 {
    let mut best = 0.0f64;
    for (&c, &p) in marginal.iter().zip(theta) {
        best = best.max((c as f64 - p * lf).abs());
    }
    best
}

/// max_t |N_t / l - theta_t|, eq. (6), computed as the definition reads.
///
/// Only the types that can be the maximum are divided: the rounding errors of
/// |N_t - theta_t l| (under 3e-16 l) and of l |N_t / l - theta_t| (under 4e-16 l) add up to
/// less than 2e-15 l between two types, so a type whose scaled value is below the largest by
/// more than [`MARGINAL_SLACK`] l has a smaller |N_t / l - theta_t| than the type at the top,
/// and the result equals the maximum over every type bit for bit.
#[inline(always)]
fn marginal_exact(marginal: &[u64], theta: &[f64], lf: f64) -> f64 {
    let top = marginal_scaled(marginal, theta, lf);
    let cut = top - MARGINAL_SLACK * lf;
    let mut best = 0.0f64;
    for (&c, &p) in marginal.iter().zip(theta) {
        if (c as f64 - p * lf).abs() >= cut {
            best = best.max((c as f64 / lf - p).abs());
        }
    }
    best
}

/// See [`marginal_exact`] (50 times the rounding it must cover).
const MARGINAL_SLACK: f64 = 1e-13;

/// The marginal flag of day l from its scaled statistic, starting a quiet period when the
/// statistic is far enough below the threshold: max_t |N_t - theta_t l| moves by at most 1
/// a day and l r(l) only grows, so with slack s below the floor the next ceil(s) - 1 days
/// cannot fire.
#[inline(always)]
fn marginal_flag(
    marginal: &[u64],
    theta: &[f64],
    quiet_until: &mut u64,
    l: u64,
    th: &mut Threshold,
) -> bool {
    if l <= *quiet_until {
        return false;
    }
    let lf = l as f64;
    let scaled = marginal_scaled(marginal, theta, lf);
    let slack = th.floor - scaled;
    if slack > 0.0 {
        *quiet_until = l + ((slack * (1.0 - BAND)).ceil() as u64).saturating_sub(1);
        return false;
    }
    th.crosses(scaled, |th| marginal_exact(marginal, theta, lf) >= th.r())
}

/// Smallest batch (days) for which the complete mode estimates its new groups up front.
const PRESIZE_MIN_DAYS: usize = 1 << 15;

/// SplitMix64 finaliser (spreads a key hash over all 64 bits).
#[inline(always)]
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a player remembers of a group read back below the keep floor, besides its M then
/// (the slot's count): the block bound of that day and the block giving it.
#[derive(Clone, Copy, Debug, Default)]
struct Remembered {
    bound: u64,
    block: usize,
    /// False once the group is tracked (its days are counted there).
    valid: bool,
}

// SAFETY: integers and a bool, each valid when all zero.
unsafe impl table::ZeroTag for Remembered {}

/// Largest number of groups a player remembers as read back below the keep floor.
const COLD_MAX: usize = 1 << 16;
/// Days of look-ahead when prefetching table slots.
const AHEAD: usize = 24;
/// Largest K kept in the dense count store.
const DENSE_MAX_TYPES: usize = 32;
/// Largest day number whose value is exact in f64.
pub(crate) const MAX_DAY: u64 = 1 << 53;

/// Prefetch hint (never faults, never changes behaviour).
#[inline(always)]
pub(crate) fn prefetch_read<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: _mm_prefetch is a hint; it never dereferences the pointer architecturally and
    // cannot fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(ptr as *const i8, core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Asks the kernel to back a large, not yet touched allocation with transparent huge pages:
/// the tables are read at random, and with 4 KiB pages nearly every access misses the TLB.
/// A hint only; without it (or off Linux) nothing changes but speed.
pub(crate) fn advise_huge_pages<T>(buffer: &mut Vec<T>) {
    const HUGE: usize = 2 << 20;
    let bytes = buffer.capacity() * std::mem::size_of::<T>();
    if bytes < 2 * HUGE {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = buffer.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end > aligned {
            // SAFETY: the range lies inside the buffer's own allocation; MADV_HUGEPAGE only
            // changes how the kernel backs it and never its contents.
            unsafe {
                libc::madvise(
                    aligned as *mut libc::c_void,
                    end - aligned,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// The rows of a flat array of per-player pmfs with `ks[i]` entries each.
pub(crate) fn split_rows<'a>(theta: &'a [f64], ks: &'a [usize]) -> impl Iterator<Item = &'a [f64]> {
    ks.iter().scan(0usize, move |start, &k| {
        let row = &theta[*start..*start + k];
        *start += k;
        Some(row)
    })
}

/// Number of groups d_-i player i can have: the product of the other players' K_j (saturating).
pub(crate) fn groups_max(ks: &[usize], player: usize) -> u64 {
    ks.iter()
        .enumerate()
        .filter(|&(j, _)| j != player)
        .fold(1u64, |acc, (_, &k)| acc.saturating_mul(k as u64))
}

/// Destination of a [`BidLedger::record`] call: row-major (L, n) arrays.
pub struct RecordOutput<'a> {
    /// E_i(l) of eq. (13).
    pub flags: &'a mut [bool],
    /// Optional exact max_t |f_i,t(l)| and max_d |h_i,d(l)|.
    pub detail: Option<(&'a mut [f64], &'a mut [f64])>,
}

/// A profile d with its joint discrepancy h_{i,d}(l) for one player.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileDiscrepancy {
    pub profile: Vec<u32>,
    pub value: f64,
}

/// One player's statistics.
struct Player<const W: usize, C> {
    theta: Vec<f64>,
    /// Types by decreasing probability (the sparse store needs it).
    theta_desc: Vec<u32>,
    /// Light mode: tracked groups d_-i, count = M(d_-i), tag = index of the group's record.
    tracked: CountTable<W, u32>,
    /// Light mode: per-type counts of the tracked groups.
    records: C,
    /// Light mode: tracked groups by v(g) = max_t |c_t - theta_t M|.
    heap: IndexedMaxHeap,
    /// Complete mode: every group d_-i seen, with its count-vector class.
    groups: GroupTable<W>,
    /// Complete mode: the classes of the groups (empty in the light mode).
    classes: Classes<C>,
    /// Scratch space for counts read back from J.
    scratch: Vec<(u32, u64)>,
    /// Light mode: groups read back from J and found below the keep floor ("remembered"),
    /// with their exact M then (count) and that day's block bound (see [`Remembered`]).
    /// Derived state (not saved); reset when it grows large.
    cold: CountTable<W, Remembered>,
    /// Last day of a quiet period during which the marginal test provably cannot fire.
    quiet_until: u64,
}

// Manual impl: a derive would ask `C: Clone` twice; the trait already requires it.
impl<const W: usize, C: CountStore> Clone for Player<W, C> {
    fn clone(&self) -> Self {
        Self {
            theta: self.theta.clone(),
            theta_desc: self.theta_desc.clone(),
            tracked: self.tracked.clone(),
            records: self.records.clone(),
            heap: self.heap.clone(),
            groups: self.groups.clone(),
            classes: self.classes.clone(),
            scratch: Vec::new(),
            cold: self.cold.clone(),
            quiet_until: self.quiet_until,
        }
    }
}

/// What a player needs of the ledger to read a group's counts back from J.
struct Shared<'a, const W: usize> {
    layout: &'a KeyLayout,
    joint: &'a CountTable<W>,
    ks: &'a [usize],
}

impl<const W: usize> Shared<'_, W> {
    /// c_t(g) = J(g with `player`'s digit t) for the types with c_t > 0, and their sum M(g).
    fn read_back(&self, key: &[u64; W], player: usize, out: &mut Vec<(u32, u64)>) -> u64 {
        out.clear();
        let mut m = 0;
        for t in 0..self.ks[player] as u32 {
            let c = self.joint.count(&self.layout.with_digit(key, player, t));
            if c > 0 {
                out.push((t, c));
                m += c;
            }
        }
        m
    }
}

impl<const W: usize, C: CountStore> Player<W, C> {
    /// A player with supertype `theta`; `packed`: its group keys fit in 32 bits.
    fn new(theta: &[f64], packed: bool) -> Self {
        let k = theta.len();
        let mut theta_desc: Vec<u32> = (0..k as u32).collect();
        theta_desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
        Self {
            theta: theta.to_vec(),
            theta_desc,
            tracked: CountTable::default(),
            records: C::new(k),
            heap: IndexedMaxHeap::default(),
            groups: GroupTable::new(packed),
            classes: Classes::new(k),
            scratch: Vec::new(),
            cold: CountTable::default(),
            quiet_until: 0,
        }
    }

    #[inline(always)]
    fn discrepancy(&self, rid: u32) -> f64 {
        self.records.discrepancy(rid, &self.theta, &self.theta_desc)
    }

    /// Starts tracking group `key` with the given counts.
    fn track(&mut self, key: &[u64; W], hash: u64, counts: &[(u32, u64)]) {
        let m = counts.iter().map(|e| e.1).sum();
        let rid = self.records.push_group();
        for &(t, c) in counts {
            self.records.add(rid, t, c);
        }
        let (slot, inserted) = self.tracked.add(key, hash, m);
        debug_assert!(inserted);
        slot.tag = rid;
        self.heap.register(rid);
        self.heap.push(rid, self.discrepancy(rid));
    }

    /// Light mode: adds one day with bid `t` to player `player`'s group of profile `full`;
    /// `bound` is an upper bound on the group's M (today included) and `keep` the ledger's
    /// keep floor: every tracked group has M >= keep, so a bound below it proves the group is
    /// untracked and cannot fire (keep <= today's l r(l)), without computing its key.
    /// Returns the group's key and hash when it is untracked and must be read back from J
    /// (see [`Self::admit`]).
    #[inline(always)]
    fn observe(
        &mut self,
        full: &[u64; W],
        t: u32,
        bound: u64,
        keep: f64,
        layout: &KeyLayout,
        player: usize,
    ) -> Option<([u64; W], u64)> {
        if (bound as f64) < keep {
            return None;
        }
        let key = layout.clear(full, player);
        let hash = hash_key(&key);
        if let Some(slot) = self.tracked.get_mut(&key, hash) {
            slot.count += 1;
            let rid = slot.tag;
            self.records.add(rid, t, 1);
            self.heap.update(rid, self.discrepancy(rid));
            None
        } else {
            Some((key, hash))
        }
    }

    /// Drops the tracked groups with M < `keep` (light mode). They cannot fire before they are
    /// touched again (M < keep <= l r(l) from now on), and a touched group whose bound reaches
    /// the keep floor is read back from J, so nothing is lost; what stays tracked keeps the
    /// per-day work of large markets to a bound check per player.
    fn purge(&mut self, keep: f64) {
        if self.tracked.iter().all(|s| s.count as f64 >= keep) {
            return;
        }
        let old_tracked = std::mem::take(&mut self.tracked);
        let old_records = std::mem::replace(&mut self.records, C::new(self.theta.len()));
        self.heap = IndexedMaxHeap::default();
        let mut counts = std::mem::take(&mut self.scratch);
        for slot in old_tracked.iter().filter(|s| s.count as f64 >= keep) {
            counts.clear();
            for t in 0..self.theta.len() as u32 {
                let c = old_records.count(slot.tag, t);
                if c > 0 {
                    counts.push((t, c));
                }
            }
            self.track(&slot.key, hash_key(&slot.key), &counts);
        }
        self.scratch = counts;
    }

    /// Complete mode: adds `by` days with bid `t` to group `key` (hash `hash`).
    #[inline(always)]
    fn observe_all(&mut self, key: &[u64; W], hash: u64, t: u32, by: u64) {
        self.groups.reserve_one();
        match self.groups.find(key, hash) {
            Ok(idx) => {
                let a = self.groups.class_at(idx);
                let b = self.classes.step(a, t, by, &self.theta, &self.theta_desc);
                if b != a {
                    self.groups.set_class(idx, b);
                }
            }
            Err(idx) => {
                let b = self.classes.enter(t, by, &self.theta, &self.theta_desc);
                self.groups.insert_at(idx, key, b);
            }
        }
    }

    /// The largest scaled joint value v among the player's groups (tracked ones in the light
    /// mode), if any.
    #[inline(always)]
    fn joint_top<const ALL: bool>(&self) -> Option<f64> {
        if ALL {
            self.classes.top().map(|e| e.0)
        } else {
            self.heap.top().map(|e| e.0)
        }
    }

    /// Today's exact max_d |h_{i,d}(l)| (complete mode).
    #[inline(always)]
    fn joint_exact_max(&mut self, lf: f64) -> f64 {
        self.classes.exact_max_cached(&self.theta, lf)
    }

    /// Reads an untracked group's counts back from J and tracks it when its M reaches the
    /// keep floor `lo` (cold); otherwise remembers its M with today's bound `bound` (and
    /// the block giving it, `usize::MAX`: none).
    #[cold]
    #[inline(never)]
    fn admit(
        &mut self,
        key: &[u64; W],
        hash: u64,
        lo: f64,
        player: usize,
        shared: &Shared<'_, W>,
        bound: (u64, usize),
    ) {
        let mut counts = std::mem::take(&mut self.scratch);
        let m = shared.read_back(key, player, &mut counts);
        if m as f64 >= lo {
            self.track(key, hash, &counts);
            // a tracked group's days are counted there: what was remembered goes stale
            if let Some(slot) = self.cold.get_mut(key, hash) {
                slot.tag.valid = false;
            }
        } else {
            if self.cold.len() >= COLD_MAX {
                self.cold = CountTable::default();
            }
            let (slot, _) = self.cold.add(key, hash, 1);
            slot.count = m;
            slot.tag = Remembered {
                bound: bound.0,
                block: bound.1,
                valid: true,
            };
        }
        self.scratch = counts;
    }

    /// Whether a remembered group, seen again today with block bound `bound` (and its block),
    /// is ruled out (M < `keep`) without reading J; `today(b)` is block b's count of today's
    /// cell. Let B be the bound on the day its M was last known. Every day since then had a
    /// bound >= B (block counts only grow), so when B >= `keep` (which only grows) no day of
    /// the group was skipped: each one came here and counted, and today's M is exact.
    /// Otherwise the days since then are at most the block's days since then,
    /// M <= M_then + C_b(today) - B.
    #[inline(always)]
    fn ruled_out(
        &mut self,
        key: &[u64; W],
        hash: u64,
        bound: (u64, usize),
        today: impl Fn(usize) -> u64,
        keep: f64,
    ) -> bool {
        let Some(slot) = self.cold.get_mut(key, hash) else {
            return false;
        };
        let r = slot.tag;
        if !r.valid {
            return false;
        }
        if r.bound as f64 >= keep {
            slot.count += 1;
            slot.tag.bound = bound.0;
            slot.tag.block = bound.1;
            // at the floor: read back (and tracked) with its per-type counts
            (slot.count as f64) < keep
        } else {
            ((slot.count + (today(r.block) - r.bound)) as f64) < keep
        }
    }

    /// E_i(l) of eq. (13): the marginal test on counts `marginal`, then the joint test on
    /// the largest group value (tracked groups, or every class when `ALL`).
    #[inline(always)]
    fn flag<const ALL: bool>(&mut self, marginal: &[u64], l: u64, th: &mut Threshold) -> bool {
        marginal_flag(marginal, &self.theta, &mut self.quiet_until, l, th)
            || match self.joint_top::<ALL>() {
                Some(v) => th.crosses(v, |th| {
                    let (lo, _) = th.band();
                    let r = th.r();
                    self.joint_flag_exact(ALL, lo, l as f64, r)
                }),
                None => false,
            }
    }

    /// Exact joint flag among groups near or above the band (cold path).
    #[cold]
    fn joint_flag_exact(&self, complete: bool, lo: f64, lf: f64, r: f64) -> bool {
        if complete {
            return self.classes.any_exact_at_least(lo, &self.theta, lf, r);
        }
        let mut candidates = Vec::new();
        self.heap.members_at_least(lo, &mut candidates);
        candidates
            .iter()
            .any(|&g| self.records.exact_stat(g, &self.theta, lf) >= r)
    }

    fn nbytes(&self) -> usize {
        self.tracked.nbytes()
            + self.records.nbytes()
            + self.heap.nbytes()
            + self.groups.nbytes()
            + self.classes.nbytes()
            + self.theta.len() * 26
    }
}

struct LedgerImpl<const W: usize, C> {
    n: usize,
    ks: Vec<usize>,
    gamma: f64,
    layout: KeyLayout,
    day: u64,
    /// J(d): days whose whole bid profile is d.
    joint: CountTable<W>,
    /// Bounds for the light mode (no longer updated once every group is kept).
    blocks: BlockCounts,
    players: Vec<Player<W, C>>,
    /// N_i(t), player by player: player i's counts are `marginal[offsets[i]..offsets[i + 1]]`.
    marginal: Vec<u64>,
    offsets: Vec<usize>,
    /// Light mode: the first day on which some player's marginal quiet period is over.
    next_check: u64,
    /// Light mode: whether some player tracks a group (a joint flag is possible).
    live: bool,
    /// Every group of every player is kept, by class (needed for exact maxima).
    complete: bool,
    floor: FloorCache,
    /// Light mode: every tracked group has M >= keep_floor (<= today's l r(l)); raised to the
    /// floor, with a purge of the groups below it, whenever the floor is refreshed.
    keep_floor: f64,
    /// Light mode, large profile spaces: today's and earlier days' full keys not yet added
    /// to J. J is read only to admit a group, so additions wait until a day's bounds could
    /// call for one (or the batch ends) and are then made together, their table slots
    /// fetched ahead (see [`CountTable::add_batch`]), instead of one access a day.
    pending: Vec<[u64; W]>,
    /// Whether J's additions are deferred (the profile space is large and the block bounds
    /// can rule days out).
    defer: bool,
    /// Number of distinct profiles there can be (saturating).
    profiles_max: usize,
}

impl<const W: usize, C: CountStore> Clone for LedgerImpl<W, C> {
    fn clone(&self) -> Self {
        Self {
            n: self.n,
            ks: self.ks.clone(),
            gamma: self.gamma,
            layout: self.layout.clone(),
            day: self.day,
            joint: self.joint.clone(),
            blocks: self.blocks.clone(),
            players: self.players.clone(),
            marginal: self.marginal.clone(),
            offsets: self.offsets.clone(),
            next_check: self.next_check,
            live: self.live,
            complete: self.complete,
            floor: self.floor,
            keep_floor: self.keep_floor,
            pending: self.pending.clone(),
            defer: self.defer,
            profiles_max: self.profiles_max,
        }
    }
}

/// Day l's threshold l r(l): a cached lower bound `floor`, the band [lo, hi] around it
/// (computed when a statistic reaches the floor) and the exact r(l) (inside the band).
struct Threshold {
    floor: f64,
    band: Option<(f64, f64)>,
    l: u64,
    gamma: f64,
    exact: Option<f64>,
}

/// Lower edge of the band around l r(l).
#[inline]
fn band_floor(l: u64, gamma: f64) -> f64 {
    scaled_threshold_fast(l, 1.0 + gamma) * (1.0 - BAND)
}

// The two functions below are kept out of line on purpose: inlined, the optimizer speculates
// their (side-effect free) ln/pow/sqrt ahead of the branches that rarely need them, which made
// every day pay for them.

/// [lo, hi] around l r(l).
#[cold]
#[inline(never)]
fn band_around(l: u64, gamma: f64) -> (f64, f64) {
    let t = scaled_threshold_fast(l, 1.0 + gamma);
    (t * (1.0 - BAND), t * (1.0 + BAND))
}

/// r(l) of eq. (11).
#[cold]
#[inline(never)]
fn exact_window(l: u64, gamma: f64) -> f64 {
    window(l, gamma)
}

impl Threshold {
    #[inline(always)]
    fn new(l: u64, gamma: f64, floor: f64) -> Self {
        Self {
            floor,
            band: None,
            l,
            gamma,
            exact: None,
        }
    }

    /// [lo, hi] around l r(l).
    fn band(&mut self) -> (f64, f64) {
        let (l, gamma) = (self.l, self.gamma);
        *self.band.get_or_insert_with(|| band_around(l, gamma))
    }

    fn r(&mut self) -> f64 {
        let (l, gamma) = (self.l, self.gamma);
        *self.exact.get_or_insert_with(|| exact_window(l, gamma))
    }

    /// Decides `stat >= r(l)` from its scaled value; `exact` decides inside the band.
    #[inline(always)]
    fn crosses(&mut self, scaled: f64, exact: impl FnOnce(&mut Self) -> bool) -> bool {
        if scaled < self.floor {
            return false;
        }
        let (lo, hi) = self.band();
        if scaled < lo {
            false
        } else if scaled > hi {
            true
        } else {
            exact(self)
        }
    }
}

/// A lower bound on the band's lower edge, refreshed when the day grows by 1/64.
#[derive(Clone, Copy)]
struct FloorCache {
    day: u64,
    floor: f64,
}

impl FloorCache {
    #[inline(always)]
    fn get(&mut self, l: u64, gamma: f64) -> f64 {
        if l > self.day + self.day / 64 {
            self.day = l;
            self.floor = band_floor(l, gamma);
        }
        self.floor
    }
}

impl<const W: usize, C: CountStore> LedgerImpl<W, C> {
    /// `pack`: store group tables in one word per slot (needs group keys below 2^32).
    fn new(theta: &[f64], ks: &[usize], gamma: f64, layout: KeyLayout, pack: bool) -> Self {
        let largest: Vec<f64> = split_rows(theta, ks)
            .map(|row| row.iter().copied().fold(0.0, f64::max))
            .collect();
        let mut blocks = BlockCounts::new(ks, &largest);
        blocks.use_key_fields(&layout);
        let profiles_max = ks.iter().fold(1usize, |acc, &k| acc.saturating_mul(k));
        Self {
            defer: profiles_max > 1 << 16 && blocks.len() >= 2,
            profiles_max,
            pending: Vec::new(),
            n: ks.len(),
            ks: ks.to_vec(),
            gamma,
            layout,
            day: 0,
            joint: CountTable::default(),
            blocks,
            players: split_rows(theta, ks)
                .map(|row| Player::new(row, pack))
                .collect(),
            marginal: vec![0; theta.len()],
            offsets: std::iter::once(0)
                .chain(ks.iter().scan(0, |acc, &k| {
                    *acc += k;
                    Some(*acc)
                }))
                .collect(),
            next_check: 0,
            live: false,
            complete: false,
            floor: FloorCache { day: 0, floor: 0.0 },
            keep_floor: 0.0,
        }
    }

    fn shared(&self) -> Shared<'_, W> {
        Shared {
            layout: &self.layout,
            joint: &self.joint,
            ks: &self.ks,
        }
    }

    /// Keeps every group seen so far (from J) and every group from now on, by class; the
    /// light mode's tracked groups are dropped.
    fn ensure_complete(&mut self) {
        if self.complete {
            return;
        }
        for (i, p) in self.players.iter_mut().enumerate() {
            let expected = (self.joint.len() as u64).min(groups_max(&self.ks, i)) as usize;
            p.tracked = CountTable::default();
            p.records = C::new(self.ks[i]);
            p.heap = IndexedMaxHeap::default();
            p.groups.expect(expected);
        }
        let mut digits = vec![0u32; self.n];
        for entry in self.joint.iter() {
            self.layout.unpack(&entry.key, &mut digits);
            for (i, p) in self.players.iter_mut().enumerate() {
                let key = self.layout.clear(&entry.key, i);
                p.observe_all(&key, hash_key(&key), digits[i], entry.count);
            }
        }
        self.complete = true;
    }

    /// Keys and hashes of day `row` (the full profile first, then, in the complete mode, each
    /// player's group), written to ring slot `slot`, with prefetches of the large tables'
    /// slots. The light mode builds a group's key only when its bound calls for it.
    #[inline(always)]
    fn prepare<const ALL: bool, D: Digit>(
        &self,
        bids: &[D],
        row: usize,
        slot: usize,
        keys: &mut [[u64; W]],
        hashes: &mut [u64],
    ) {
        let n = self.n;
        let stride = if ALL { n + 1 } else { 1 };
        let mut full = [0u64; W];
        for (i, &b) in bids[row * n..(row + 1) * n].iter().enumerate() {
            let (w, s) = self.layout.locate(i);
            full[w] |= (b.index() as u64) << s;
        }
        let h = hash_key(&full);
        // the complete mode adds to J once the batch is over (nothing reads J before)
        if self.joint_direct::<ALL>() {
            self.joint.prefetch(h);
        }
        keys[slot * stride] = full;
        hashes[slot * stride] = h;
        if ALL {
            for (i, player) in self.players.iter().enumerate() {
                let key = self.layout.clear(&full, i);
                let h = hash_key(&key);
                player.groups.prefetch(h);
                keys[slot * stride + 1 + i] = key;
                hashes[slot * stride + 1 + i] = h;
            }
        }
    }

    /// Number of distinct groups d_-i among `days` rows of `bids`, for each player,
    /// estimated by HyperLogLog (relative standard error about 1.6%).
    fn batch_groups<D: Digit>(&self, bids: &[D], days: usize) -> Vec<f64> {
        const LOG2: u32 = 12;
        let (n, m) = (self.n, 1usize << LOG2);
        let mut registers = vec![0u8; n * m];
        for row in bids.chunks_exact(n).take(days) {
            let mut full = [0u64; W];
            for (i, &b) in row.iter().enumerate() {
                let (w, s) = self.layout.locate(i);
                full[w] |= (b.index() as u64) << s;
            }
            for (i, regs) in registers.chunks_exact_mut(m).enumerate() {
                let h = splitmix(hash_key(&self.layout.clear(&full, i)));
                let rank = ((h << LOG2) | (1 << (LOG2 - 1))).leading_zeros() as u8 + 1;
                let r = &mut regs[(h >> (64 - LOG2)) as usize];
                *r = (*r).max(rank);
            }
        }
        let mf = m as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / mf);
        registers
            .chunks_exact(m)
            .map(|regs| {
                let sum: f64 = regs.iter().map(|&r| (-(r as f64)).exp2()).sum();
                let raw = alpha * mf * mf / sum;
                let zeros = regs.iter().filter(|&&r| r == 0).count();
                if raw <= 2.5 * mf && zeros > 0 {
                    mf * (mf / zeros as f64).ln()
                } else {
                    raw
                }
            })
            .collect()
    }

    /// Whether each day is added to J as it comes (small profile spaces, where J stays in
    /// cache, and the light mode unless it defers), rather than from a buffer.
    #[inline(always)]
    fn joint_direct<const ALL: bool>(&self) -> bool {
        if ALL {
            self.profiles_max <= 1 << 16
        } else {
            !self.defer
        }
    }

    fn record<D: Digit>(&mut self, bids: &[D], days: usize, out: RecordOutput<'_>) {
        if out.detail.is_some() {
            self.ensure_complete();
        }
        if self.complete {
            self.record_days::<true, D>(bids, days, out);
        } else {
            self.record_days::<false, D>(bids, days, out);
        }
    }

    /// The day loop; `ALL`: the complete mode (every group kept).
    fn record_days<const ALL: bool, D: Digit>(
        &mut self,
        bids: &[D],
        days: usize,
        out: RecordOutput<'_>,
    ) {
        let RecordOutput { flags, mut detail } = out;
        let n = self.n;
        if ALL {
            // in a large profile space the batch's full profiles wait for J here (see below)
            if !self.joint_direct::<ALL>() {
                self.pending.reserve(days);
            }
            // each day adds at most one group per player, and there are K^(n-1) groups; an
            // estimate of the batch's new groups is worth its pass only for large tables
            let large = (0..n).any(|i| groups_max(&self.ks, i) > 1 << 16);
            let fresh = (large && days >= PRESIZE_MIN_DAYS).then(|| self.batch_groups(bids, days));
            for (i, p) in self.players.iter_mut().enumerate() {
                let room = groups_max(&self.ks, i).saturating_sub(p.groups.len() as u64);
                p.groups.expect((days as u64).min(room) as usize);
                // a batch bringing many more groups than the table holds: grow once, to the
                // estimate with a margin (growth still follows if it falls short)
                if let Some(estimate) = fresh.as_ref().map(|f| f[i] * 1.1) {
                    if estimate >= 4.0 * p.groups.len() as f64 {
                        p.groups.reserve_total(p.groups.len() + estimate as usize);
                    }
                }
            }
        }
        let ring = AHEAD + 1;
        let stride = if ALL { n + 1 } else { 1 };
        let mut keys = vec![[0u64; W]; ring * stride];
        let mut hashes = vec![0u64; ring * stride];
        // the light mode with deferred J reads no large table: no slots to prefetch, and
        // each day's key is built in the same pass as its marginal counts
        let fused = !ALL && self.defer;
        // the light mode's block cells, computed (and prefetched) AHEAD days early
        let mut cells = vec![[0u32; blocks::LANES]; ring];
        if !ALL {
            for row in 0..days.min(AHEAD) {
                let profile = &bids[row * n..(row + 1) * n];
                cells[row] = self.blocks.cells(|i| profile[i].index());
            }
        }
        if !fused {
            for row in 0..days.min(AHEAD) {
                self.prepare::<ALL, D>(bids, row, row % ring, &mut keys, &mut hashes);
            }
        }
        for row in 0..days {
            if !ALL && row + AHEAD < days {
                let ahead = &bids[(row + AHEAD) * n..(row + AHEAD + 1) * n];
                cells[(row + AHEAD) % ring] = self.blocks.cells(|i| ahead[i].index());
            }
            if !fused && row + AHEAD < days {
                self.prepare::<ALL, D>(
                    bids,
                    row + AHEAD,
                    (row + AHEAD) % ring,
                    &mut keys,
                    &mut hashes,
                );
            }
            self.day += 1;
            let l = self.day;
            let lf = l as f64;
            let mut th = Threshold::new(l, self.gamma, self.floor.get(l, self.gamma));
            if !ALL && th.floor > self.keep_floor {
                self.keep_floor = th.floor;
                for p in &mut self.players {
                    p.purge(th.floor);
                }
                self.live = self.players.iter().any(|p| p.heap.top().is_some());
            }
            let keep = self.keep_floor;
            let base = (row % ring) * stride;
            let profile = &bids[row * n..(row + 1) * n];
            if fused {
                let (marg, offsets) = (&mut self.marginal, &self.offsets);
                let mut full = [0u64; W];
                self.layout.pack_with(profile, D::index, &mut full, |i, t| {
                    marg[offsets[i] + t] += 1
                });
                keys[base] = full;
                self.pending.push(full);
            } else {
                if self.joint_direct::<ALL>() {
                    self.joint.add(&keys[base], hashes[base], 1);
                } else {
                    // no group is read back from J in the complete mode: in a large profile
                    // space the day's addition waits for the end of the batch
                    self.pending.push(keys[base]);
                }
                for (i, b) in profile.iter().enumerate() {
                    self.marginal[self.offsets[i] + b.index()] += 1;
                }
            }
            // the block bounds serve the light mode only
            let bound = (!ALL).then(|| {
                let key = Some(&keys[base][..]);
                let bid = |i: usize| profile[i].index();
                self.blocks.add_cells(&cells[row % ring], bid, key, 1)
            });
            // no player's bound reaches the keep floor: nothing to look up today
            let quiet =
                bound.is_some_and(|b| (b as f64) < keep || (self.blocks.settle() as f64) < keep);
            let (marg, offsets) = (&self.marginal, &self.offsets);
            let today = &mut flags[row * n..(row + 1) * n];
            if ALL {
                for (i, p) in self.players.iter_mut().enumerate() {
                    let t = profile[i].index() as u32;
                    p.observe_all(&keys[base + 1 + i], hashes[base + 1 + i], t, 1);
                    let m = &marg[offsets[i]..offsets[i + 1]];
                    today[i] = p.flag::<ALL>(m, l, &mut th);
                    if let Some((marginal, joint)) = detail.as_mut() {
                        marginal[row * n + i] = marginal_exact(m, &p.theta, lf);
                        joint[row * n + i] = p.joint_exact_max(lf);
                    }
                }
                continue;
            }
            if let (Some(_), false) = (bound, quiet) {
                for (i, p) in self.players.iter_mut().enumerate() {
                    let t = profile[i].index() as u32;
                    let (m_bound, block) = self.blocks.bound_of(i);
                    let layout = &self.layout;
                    let Some((key, hash)) = p.observe(&keys[base], t, m_bound, keep, layout, i)
                    else {
                        continue;
                    };
                    let blocks = &self.blocks;
                    if !p.ruled_out(&key, hash, (m_bound, block), |b| blocks.today(b), keep) {
                        // J must hold every day so far, today included, to be read
                        if !self.pending.is_empty() {
                            self.joint.add_batch(&self.pending, self.profiles_max);
                            self.pending.clear();
                        }
                        let shared = Shared {
                            layout,
                            joint: &self.joint,
                            ks: &self.ks,
                        };
                        p.admit(&key, hash, keep, i, &shared, (m_bound, block));
                    }
                }
                self.live = self.players.iter().any(|p| p.heap.top().is_some());
            }
            // flags: only when a marginal quiet period is over or a group is tracked
            if l > self.next_check || self.live {
                let mut next = u64::MAX;
                for (i, p) in self.players.iter_mut().enumerate() {
                    today[i] = p.flag::<false>(&marg[offsets[i]..offsets[i + 1]], l, &mut th);
                    next = next.min(p.quiet_until);
                }
                self.next_check = next;
            } else {
                today.fill(false);
            }
        }
        self.flush_joint();
        if ALL {
            // the buffer held a whole batch: do not keep its memory
            self.pending = Vec::new();
        }
    }

    /// Adds the deferred days to J.
    fn flush_joint(&mut self) {
        if !self.pending.is_empty() {
            self.joint.add_batch(&self.pending, self.profiles_max);
            self.pending.clear();
        }
    }

    fn distinct_profiles(&self) -> usize {
        self.joint.len()
    }

    fn marginal_counts(&self) -> Vec<u64> {
        self.marginal.clone()
    }

    /// M_i(g) of every group of `player` seen so far, aggregated from J.
    fn group_totals(&self, player: usize) -> CountTable<W> {
        let mut totals = CountTable::default();
        for entry in self.joint.iter() {
            let key = self.layout.clear(&entry.key, player);
            totals.add(&key, hash_key(&key), entry.count);
        }
        totals
    }

    fn groups_seen(&self) -> Vec<usize> {
        if self.complete {
            self.players.iter().map(|p| p.groups.len()).collect()
        } else {
            (0..self.n).map(|i| self.group_totals(i).len()).collect()
        }
    }

    fn joint_max(&mut self) -> Vec<f64> {
        self.ensure_complete();
        let (day, lf) = (self.day, self.day as f64);
        self.players
            .iter_mut()
            .map(|p| if day > 0 { p.joint_exact_max(lf) } else { 0.0 })
            .collect()
    }

    fn joint_at(&self, profile: &[u32]) -> Vec<f64> {
        let full: [u64; W] = self.layout.pack(profile);
        let lf = self.day as f64;
        let shared = self.shared();
        let mut scratch = Vec::new();
        (0..self.n)
            .map(|i| {
                let m = shared.read_back(&self.layout.clear(&full, i), i, &mut scratch);
                if m == 0 {
                    return 0.0;
                }
                let j = self.joint.count(&full) as f64;
                j / lf - self.players[i].theta[profile[i] as usize] * (m as f64 / lf)
            })
            .collect()
    }

    fn worst_profiles(&mut self, player: usize, count: usize) -> Vec<ProfileDiscrepancy> {
        self.ensure_complete();
        let p = &self.players[player];
        let counts = p.classes.counts();
        let lf = self.day as f64;
        // each class's h at its worst type (ties: the smaller type), computed as eq. (8) reads
        let mut worst: HashMap<u32, (u32, f64)> = HashMap::new();
        let mut members: Vec<(f64, [u64; W], u32)> = Vec::with_capacity(p.groups.len());
        for (key, class) in p.groups.iter() {
            let (_, h) = *worst.entry(class).or_insert_with(|| {
                let m_over_l = counts.total(class) as f64 / lf;
                (0..self.ks[player] as u32)
                    .map(|t| {
                        let h = counts.count(class, t) as f64 / lf - p.theta[t as usize] * m_over_l;
                        (t, h)
                    })
                    .fold((0, f64::NAN), |best, e| {
                        if best.1.is_nan() || e.1.abs() > best.1.abs() {
                            e
                        } else {
                            best
                        }
                    })
            });
            members.push((h.abs(), key, class));
        }
        // largest |h| first, then by group key
        let order = |a: &(f64, [u64; W], u32), b: &(f64, [u64; W], u32)| {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        };
        if count < members.len() {
            if count > 0 {
                members.select_nth_unstable_by(count - 1, order);
            }
            members.truncate(count);
        }
        members.sort_unstable_by(order);
        members
            .into_iter()
            .map(|(_, key, class)| {
                let (t, value) = worst[&class];
                let full = self.layout.with_digit(&key, player, t);
                let mut profile = vec![0u32; self.n];
                self.layout.unpack(&full, &mut profile);
                ProfileDiscrepancy { profile, value }
            })
            .collect()
    }

    /// Distinct profiles seen with their counts J(d), ordered by packed key.
    fn joint_entries(&self) -> Vec<([u64; W], u64)> {
        let mut entries: Vec<([u64; W], u64)> =
            self.joint.iter().map(|s| (s.key, s.count)).collect();
        entries.sort_unstable();
        entries
    }

    /// Distinct profiles seen, row-major, and their counts J(d).
    fn profile_counts(&self) -> (Vec<u32>, Vec<u64>) {
        let mut profiles = Vec::new();
        let mut counts = Vec::new();
        let mut digits = vec![0u32; self.n];
        for (key, c) in self.joint_entries() {
            self.layout.unpack(&key, &mut digits);
            profiles.extend_from_slice(&digits);
            counts.push(c);
        }
        (profiles, counts)
    }

    fn nbytes(&self) -> usize {
        self.joint.nbytes()
            + self.blocks.nbytes()
            + self.players.iter().map(Player::nbytes).sum::<usize>()
    }
}

enum Inner {
    D1(LedgerImpl<1, DenseCounts>),
    D2(LedgerImpl<2, DenseCounts>),
    D4(LedgerImpl<4, DenseCounts>),
    D8(LedgerImpl<8, DenseCounts>),
    S1(LedgerImpl<1, SparseCounts>),
    S2(LedgerImpl<2, SparseCounts>),
    S4(LedgerImpl<4, SparseCounts>),
    S8(LedgerImpl<8, SparseCounts>),
    WD(WideLedger<DenseCounts>),
    WS(WideLedger<SparseCounts>),
}

impl Clone for Inner {
    fn clone(&self) -> Self {
        match self {
            Inner::D1(l) => Inner::D1(l.clone()),
            Inner::D2(l) => Inner::D2(l.clone()),
            Inner::D4(l) => Inner::D4(l.clone()),
            Inner::D8(l) => Inner::D8(l.clone()),
            Inner::S1(l) => Inner::S1(l.clone()),
            Inner::S2(l) => Inner::S2(l.clone()),
            Inner::S4(l) => Inner::S4(l.clone()),
            Inner::S8(l) => Inner::S8(l.clone()),
            Inner::WD(l) => Inner::WD(l.clone()),
            Inner::WS(l) => Inner::WS(l.clone()),
        }
    }
}

/// The bid ledger of one market: declared supertypes, running counts and penalty events.
#[derive(Clone)]
pub struct BidLedger {
    inner: Inner,
}

/// Validates declared supertypes: one pmf of `ks[i]` entries per player, concatenated.
pub fn check_supertypes(theta: &[f64], ks: &[usize]) -> CoreResult<()> {
    let cells = ks.iter().try_fold(0usize, |acc, &k| acc.checked_add(k));
    if cells != Some(theta.len()) {
        return Err(CoreError::InvalidArgument(format!(
            "supertypes must hold sum_i K_i = {} probabilities, got {}",
            cells.map_or("more than 2^64".to_string(), |c| c.to_string()),
            theta.len()
        )));
    }
    for (i, row) in split_rows(theta, ks).enumerate() {
        if row.is_empty() {
            return Err(CoreError::InvalidArgument(format!(
                "supertype of player {i} is empty; a player needs at least one type"
            )));
        }
        for (t, &p) in row.iter().enumerate() {
            if !p.is_finite() || p < 0.0 {
                return Err(CoreError::InvalidArgument(format!(
                    "supertype of player {i}: probability of type {t} is {p}; \
                     probabilities must be finite and >= 0"
                )));
            }
        }
        let total: f64 = row.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(CoreError::InvalidArgument(format!(
                "supertype of player {i} sums to {total:.17}, not 1 (tolerance 1e-9)"
            )));
        }
    }
    Ok(())
}

/// Bytes of memory this process may still use (MemAvailable on Linux; unbounded elsewhere).
pub fn available_memory() -> u64 {
    if let Ok(limit) = std::env::var("STOCHMECH_MEMORY_LIMIT") {
        if let Ok(bytes) = limit.trim().parse::<u64>() {
            return bytes;
        }
    }
    #[cfg(target_os = "linux")]
    if let Ok(info) = std::fs::read_to_string("/proc/meminfo") {
        for line in info.lines() {
            if let Some(rest) = line.strip_prefix("MemAvailable:") {
                let kib = rest.trim().trim_end_matches("kB").trim();
                if let Ok(kib) = kib.parse::<u64>() {
                    return kib.saturating_mul(1024);
                }
            }
        }
    }
    u64::MAX
}

/// Refuses an allocation of about `bytes` when it cannot fit in memory.
fn check_fits(bytes: u64, what: &str) -> CoreResult<()> {
    let available = available_memory();
    if bytes > available {
        return Err(CoreError::Unsupported(format!(
            "{what} needs about {:.3} GB of memory and {:.3} GB are available; \
             use fewer players, types or days per call",
            bytes as f64 / 1e9,
            available as f64 / 1e9
        )));
    }
    Ok(())
}

impl BidLedger {
    /// A ledger for `n` players sharing `k` types with declared supertypes `theta` ((n, K)
    /// row-major) and window exponent `gamma` (eq. 11).
    pub fn new(theta: &[f64], n: usize, k: usize, gamma: f64) -> CoreResult<Self> {
        if k == 0 {
            return Err(CoreError::InvalidArgument(
                "a player needs at least one type, got K = 0".into(),
            ));
        }
        Self::with_types(theta, &vec![k; n], gamma)
    }

    /// A ledger for players with `ks[i]` types each: `theta` holds their supertypes one after
    /// the other (player 0's `ks[0]` probabilities first).
    pub fn with_types(theta: &[f64], ks: &[usize], gamma: f64) -> CoreResult<Self> {
        let layout = KeyLayout::new(ks)?;
        check_gamma(gamma)?;
        check_supertypes(theta, ks)?;
        // per type: theta, its rank, its marginal count, a key word and a count-class weight,
        // with the dense count store's records on top
        let cells = theta.len() as u64;
        check_fits(cells.saturating_mul(64), "a ledger of this size")?;
        Ok(Self::build(theta, ks, gamma, layout))
    }

    /// As [`Self::with_types`], but always with the wide layout (hashed addressing, exact
    /// stored keys) that larger profiles use: for testing it against the packed one.
    pub fn with_types_wide(theta: &[f64], ks: &[usize], gamma: f64) -> CoreResult<Self> {
        let layout = KeyLayout::new(ks)?;
        check_gamma(gamma)?;
        check_supertypes(theta, ks)?;
        check_fits(
            (theta.len() as u64).saturating_mul(64),
            "a ledger of this size",
        )?;
        let dense = ks.iter().all(|&k| k <= DENSE_MAX_TYPES);
        let inner = if dense {
            Inner::WD(WideLedger::new(theta, ks, gamma, layout))
        } else {
            Inner::WS(WideLedger::new(theta, ks, gamma, layout))
        };
        Ok(Self { inner })
    }

    fn build(theta: &[f64], ks: &[usize], gamma: f64, layout: KeyLayout) -> Self {
        // keys of at most 32 bits share their table slot's word with the class id
        let pack = layout.total_bits() <= 32;
        Self::build_with(theta, ks, gamma, layout, pack)
    }

    fn build_with(theta: &[f64], ks: &[usize], gamma: f64, layout: KeyLayout, pack: bool) -> Self {
        let dense = ks.iter().all(|&k| k <= DENSE_MAX_TYPES);
        let inner = match (layout.words(), dense) {
            (w, true) if w > key::MAX_PACKED_WORDS => {
                Inner::WD(WideLedger::new(theta, ks, gamma, layout))
            }
            (w, false) if w > key::MAX_PACKED_WORDS => {
                Inner::WS(WideLedger::new(theta, ks, gamma, layout))
            }
            (1, true) => Inner::D1(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (2, true) => Inner::D2(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (3 | 4, true) => Inner::D4(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (_, true) => Inner::D8(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (1, false) => Inner::S1(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (2, false) => Inner::S2(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (3 | 4, false) => Inner::S4(LedgerImpl::new(theta, ks, gamma, layout, pack)),
            (_, false) => Inner::S8(LedgerImpl::new(theta, ks, gamma, layout, pack)),
        };
        Self { inner }
    }

    /// Number of players n.
    pub fn n_players(&self) -> usize {
        dispatch!(&self.inner, l => l.n)
    }

    /// Number of types K_i of each player.
    pub fn type_counts(&self) -> &[usize] {
        dispatch!(&self.inner, l => &l.ks)
    }

    /// Whether the profiles are too wide for inline keys (hashed addressing, exact identity).
    pub fn is_wide(&self) -> bool {
        matches!(self.inner, Inner::WD(_) | Inner::WS(_))
    }

    /// Window exponent gamma.
    pub fn gamma(&self) -> f64 {
        dispatch!(&self.inner, l => l.gamma)
    }

    /// Days recorded so far.
    pub fn day(&self) -> u64 {
        dispatch!(&self.inner, l => l.day)
    }

    /// Declared supertypes, concatenated player by player.
    pub fn supertypes(&self) -> Vec<f64> {
        dispatch!(&self.inner, l => l.players.iter().flat_map(|p| p.theta.iter().copied()).collect())
    }

    /// Checks a batch of `days` rows of `n` bids without recording it.
    pub fn check_bids<D: Digit>(&self, bids: &[D], days: usize) -> CoreResult<()> {
        let (n, day) = (self.n_players(), self.day());
        if days.checked_mul(n) != Some(bids.len()) {
            return Err(CoreError::InvalidArgument(format!(
                "bids must hold days * n = {days} * {n} values, got {}",
                bids.len()
            )));
        }
        if day
            .checked_add(days as u64)
            .is_none_or(|end| end >= MAX_DAY)
        {
            return Err(CoreError::Unsupported(format!(
                "the ledger counts at most 2^53 days; {day} recorded and {days} more given"
            )));
        }
        digits::check_range(bids, self.type_counts(), day + 1)
    }

    /// An upper bound on the memory a record call of `days` days may add.
    fn growth_bound(&self, days: usize, detail: bool) -> u64 {
        let days = days as u64;
        let n = self.n_players() as u64;
        let (words, complete) = dispatch!(&self.inner, l => (l.layout.words() as u64, l.complete));
        // a new distinct profile per day: its table slot (load <= 1/2, growth by 2) and, when
        // wide, its stored key, count and hash
        let profile = if self.is_wide() {
            words * 8 + 4 * 16 + 16
        } else {
            4 * (words + 1) * 8
        };
        let mut bytes = days.saturating_mul(profile);
        if detail || complete {
            // a new group per player and day, with growth 4-fold
            let group = if self.is_wide() {
                8 * 24
            } else {
                8 * (words + 1) * 8
            };
            bytes = bytes.saturating_add(days.saturating_mul(n).saturating_mul(group));
        }
        bytes
    }

    /// Records `days` days of bids (row-major (days, n)), in order, continuing the day count.
    /// The whole batch is validated first (bids, outputs and memory): on error nothing changes.
    pub fn record<D: Digit>(
        &mut self,
        bids: &[D],
        days: usize,
        out: RecordOutput<'_>,
    ) -> CoreResult<()> {
        self.check_bids(bids, days)?;
        let cells = days * self.n_players();
        let detail_ok = out
            .detail
            .as_ref()
            .is_none_or(|(m, j)| m.len() == cells && j.len() == cells);
        if out.flags.len() != cells || !detail_ok {
            return Err(CoreError::InvalidArgument(format!(
                "output arrays must hold days * n = {cells} values"
            )));
        }
        let growth = self.growth_bound(days, out.detail.is_some());
        if growth > 1 << 28 {
            check_fits(growth, &format!("recording {days} days"))?;
        }
        if self.is_wide() {
            let distinct = dispatch!(&self.inner, l => l.distinct_profiles() as u64);
            if distinct + days as u64 > wide::MAX_PROFILES {
                return Err(CoreError::Unsupported(format!(
                    "the ledger holds at most {} distinct profiles; {distinct} seen and \
                     {days} more days given",
                    wide::MAX_PROFILES
                )));
            }
        }
        dispatch!(&mut self.inner, l => l.record(bids, days, out));
        Ok(())
    }

    /// Marginal counts N_i(t), concatenated player by player.
    pub fn marginal_counts(&self) -> Vec<u64> {
        dispatch!(&self.inner, l => l.marginal_counts())
    }

    /// Distinct profiles d without player i seen so far, for each player i.
    pub fn groups_seen(&self) -> Vec<usize> {
        dispatch!(&self.inner, l => l.groups_seen())
    }

    /// Checks that keeping every group (exact maxima) fits in memory.
    fn check_complete_fits(&self) -> CoreResult<()> {
        let (complete, distinct) =
            dispatch!(&self.inner, l => (l.complete, l.distinct_profiles() as u64));
        if !complete {
            let n = self.n_players() as u64;
            let words = dispatch!(&self.inner, l => l.layout.words() as u64);
            let bytes = distinct
                .saturating_mul(n)
                .saturating_mul(8 * (words + 3) * 8);
            if bytes > 1 << 28 {
                check_fits(bytes, "keeping every profile group (exact maxima)")?;
            }
        }
        Ok(())
    }

    /// Current max_d |h_{i,d}(l)| for each player (0 before the first day).
    pub fn joint_max(&mut self) -> CoreResult<Vec<f64>> {
        self.check_complete_fits()?;
        Ok(dispatch!(&mut self.inner, l => l.joint_max()))
    }

    /// Current h_{i,d}(l) for the given profile d, for each player i.
    pub fn joint_at(&self, profile: &[u32]) -> CoreResult<Vec<f64>> {
        let n = self.n_players();
        let ks = self.type_counts();
        if profile.len() != n {
            return Err(CoreError::InvalidArgument(format!(
                "a profile has one type per player ({n}), got {} values",
                profile.len()
            )));
        }
        if let Some(i) = (0..n).find(|&i| profile[i] as usize >= ks[i]) {
            return Err(CoreError::InvalidArgument(format!(
                "type {} of player {i} is outside its type space [0, {}] (K_{i} = {})",
                profile[i],
                ks[i] - 1,
                ks[i]
            )));
        }
        Ok(dispatch!(&self.inner, l => l.joint_at(profile)))
    }

    /// The `count` profiles with the largest |h_{i,d}(l)| for `player` (one per group).
    pub fn worst_profiles(
        &mut self,
        player: usize,
        count: usize,
    ) -> CoreResult<Vec<ProfileDiscrepancy>> {
        if player >= self.n_players() {
            return Err(CoreError::InvalidArgument(format!(
                "player {player} does not exist (n = {})",
                self.n_players()
            )));
        }
        self.check_complete_fits()?;
        Ok(dispatch!(&mut self.inner, l => l.worst_profiles(player, count)))
    }

    /// Distinct bid profiles seen, row-major (G, n), with their counts J(d).
    pub fn profile_counts(&self) -> (Vec<u32>, Vec<u64>) {
        dispatch!(&self.inner, l => l.profile_counts())
    }

    /// Bytes of memory held by the ledger's tables.
    pub fn nbytes(&self) -> usize {
        dispatch!(&self.inner, l => l.nbytes())
    }
}

#[cfg(test)]
mod tests;
