//! The wide ledger: profiles too long for inline keys (more than [`MAX_PACKED_WORDS`] words,
//! e.g. hundreds or thousands of players).
//!
//! # Identity is exact, hashing only addresses
//! Each distinct profile d is stored once, as its packed mixed-radix key (the exact profile,
//! [`KeyLayout`]), with its count J(d) and its Zobrist hash z(d) = XOR_i Z_i(d_i) (fixed
//! pseudo-random words). The hash of a group d_-i is z(d) XOR Z_i(d_i), one operation, so no
//! group key is ever built. Every table stores, beside a hash, a *representative* profile id;
//! a lookup that meets a matching hash compares the representative with today's profile
//! (all words, or all digits but player i's for a group), so two profiles or groups with the
//! same hash are simply two entries: a collision costs a probe, never a wrong count.
//!
//! # Flags without touching every group
//! As in the packed ledger, a group can fire only once M_i(d_-i) >= l r(l). Here the cheap
//! upper bound on M comes from two *half sketches*: the players are split in two halves A
//! and B (by key bits), and each half's sub-profile hash indexes a fixed array of counters.
//! For i in B, every day in group d_-i has sub-profile d_A, so M_i(d_-i) <= C_A(d_A) <=
//! sketch_A[hash(d_A)] (buckets only add other sub-profiles' days). A bound below the
//! threshold proves the group cannot fire; otherwise its exact counts are read back from J
//! (K_i lookups) and it is tracked if it can. Single-type players never fire (their f and h
//! are exactly zero) and are skipped.
//!
//! # Exact maxima
//! With exact maxima asked for, every group of every player with two or more types is kept
//! and interned by count vector ([`Classes`]), exactly as in the packed ledger.

use super::classes::Classes;
use super::counts::CountStore;
use super::digits::Digit;
use super::heap::IndexedMaxHeap;
use super::key::KeyLayout;
use super::persist::Reader;
use super::{
    band_floor, marginal_exact, marginal_flag, split_rows, FloorCache, ProfileDiscrepancy,
    RecordOutput, Threshold,
};
use crate::error::{CoreError, CoreResult};
use std::collections::HashMap;

/// Whether player `i` has a single type of probability exactly 1: its bids are always that
/// type, so N/l - 1 = 0 and c/l - 1 (M/l) = 0 (c = M) exactly, every day.
fn is_inert(theta: &[f64], ks: &[usize], i: usize) -> bool {
    let start: usize = ks[..i].iter().sum();
    ks[i] == 1 && theta[start] == 1.0
}

/// Largest number of distinct profiles (ids are 32-bit).
pub(crate) const MAX_PROFILES: u64 = u32::MAX as u64 - 1;

/// log2 of the counters per half sketch.
const SKETCH_LOG2: u32 = 15;

/// SplitMix64 step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Open-addressing index from a 64-bit hash to (representative profile id, value); equality
/// is decided by the caller from the representative, never from the hash alone.
#[derive(Clone)]
pub(super) struct Index {
    /// (hash, representative id + 1 (0: empty), value).
    slots: Vec<(u64, u32, u32)>,
    shift: u32,
    len: usize,
}

impl Index {
    fn with_log2(log2: u32) -> Self {
        Self {
            slots: vec![(0, 0, 0); 1 << log2],
            shift: 64 - log2,
            len: 0,
        }
    }

    fn new() -> Self {
        Self::with_log2(4)
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// `Ok(slot)` of the entry with hash `hash` whose representative satisfies `same`, or
    /// `Err(slot)`: the empty slot where it would go (valid until the next insertion).
    #[inline(always)]
    fn find(&self, hash: u64, mut same: impl FnMut(u32) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash);
        loop {
            let (h, rep, _) = self.slots[idx];
            if rep == 0 {
                return Err(idx);
            }
            if h == hash && same(rep - 1) {
                return Ok(idx);
            }
            idx = (idx + 1) & mask;
        }
    }

    /// Makes room for one more entry (load at most 1/2).
    #[inline(always)]
    fn reserve_one(&mut self) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
    }

    #[inline(always)]
    fn insert_at(&mut self, idx: usize, hash: u64, rep: u32, value: u32) {
        self.slots[idx] = (hash, rep + 1, value);
        self.len += 1;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let mut bigger = Self::with_log2(old.len().trailing_zeros() + 1);
        let mask = bigger.slots.len() - 1;
        for e in old.into_iter().filter(|e| e.1 != 0) {
            let mut idx = bigger.home(e.0);
            while bigger.slots[idx].1 != 0 {
                idx = (idx + 1) & mask;
            }
            bigger.slots[idx] = e;
        }
        bigger.len = self.len;
        *self = bigger;
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn value(&self, idx: usize) -> u32 {
        self.slots[idx].2
    }

    fn set_value(&mut self, idx: usize, value: u32) {
        self.slots[idx].2 = value;
    }

    /// (representative, value) of every entry.
    fn entries(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.slots
            .iter()
            .filter(|e| e.1 != 0)
            .map(|e| (e.1 - 1, e.2))
    }

    /// (hash, representative, value) of every entry.
    fn hashed_entries(&self) -> impl Iterator<Item = (u64, u32, u32)> + '_ {
        self.slots
            .iter()
            .filter(|e| e.1 != 0)
            .map(|e| (e.0, e.1 - 1, e.2))
    }

    pub(super) fn nbytes(&self) -> usize {
        self.slots.capacity() * 16
    }
}

/// One player's statistics in the wide ledger.
pub(super) struct WidePlayer<C> {
    pub(super) theta: Vec<f64>,
    theta_desc: Vec<u32>,
    pub(super) marginal: Vec<u64>,
    quiet_until: u64,
    /// Light mode: tracked groups (value: record id).
    pub(super) tracked: Index,
    records: C,
    heap: IndexedMaxHeap,
    /// Complete mode: every group (value: class id).
    pub(super) groups: Index,
    pub(super) classes: Classes<C>,
}

impl<C: CountStore> Clone for WidePlayer<C> {
    fn clone(&self) -> Self {
        Self {
            theta: self.theta.clone(),
            theta_desc: self.theta_desc.clone(),
            marginal: self.marginal.clone(),
            quiet_until: self.quiet_until,
            tracked: self.tracked.clone(),
            records: self.records.clone(),
            heap: self.heap.clone(),
            groups: self.groups.clone(),
            classes: self.classes.clone(),
        }
    }
}

impl<C: CountStore> WidePlayer<C> {
    fn new(theta: &[f64]) -> Self {
        let k = theta.len();
        let mut theta_desc: Vec<u32> = (0..k as u32).collect();
        theta_desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
        Self {
            theta: theta.to_vec(),
            theta_desc,
            marginal: vec![0; k],
            quiet_until: 0,
            tracked: Index::new(),
            records: C::new(k),
            heap: IndexedMaxHeap::default(),
            groups: Index::new(),
            classes: Classes::new(k),
        }
    }

    #[inline(always)]
    fn marginal_exact(&self, lf: f64) -> f64 {
        marginal_exact(&self.marginal, &self.theta, lf)
    }

    #[inline(always)]
    fn marginal_flag(&mut self, l: u64, th: &mut Threshold) -> bool {
        marginal_flag(&self.marginal, &self.theta, &mut self.quiet_until, l, th)
    }

    fn track(&mut self, slot: usize, hash: u64, rep: u32, counts: &[(u32, u64)]) {
        let rid = self.records.push_group();
        for &(t, c) in counts {
            self.records.add(rid, t, c);
        }
        self.tracked.insert_at(slot, hash, rep, rid);
        self.heap.register(rid);
        let v = self.records.discrepancy(rid, &self.theta, &self.theta_desc);
        self.heap.push(rid, v);
    }

    /// Drops the tracked groups with M < `keep`, as the packed ledger's purge does (they
    /// cannot fire before they are touched again, and are then read back from J).
    fn purge(&mut self, keep: f64) {
        let records = &self.records;
        if self
            .tracked
            .entries()
            .all(|(_, rid)| records.total(rid) as f64 >= keep)
        {
            return;
        }
        let k = self.theta.len();
        let old = std::mem::replace(&mut self.tracked, Index::new());
        let old_records = std::mem::replace(&mut self.records, C::new(k));
        self.heap = IndexedMaxHeap::default();
        let mut counts = Vec::new();
        for (hash, rep, rid) in old.hashed_entries() {
            if (old_records.total(rid) as f64) < keep {
                continue;
            }
            counts.clear();
            for t in 0..k as u32 {
                let c = old_records.count(rid, t);
                if c > 0 {
                    counts.push((t, c));
                }
            }
            self.tracked.reserve_one();
            let slot = self
                .tracked
                .find(hash, |_| false)
                .expect_err("an empty slot");
            self.track(slot, hash, rep, &counts);
        }
    }

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
            + self.theta.len() * 28
    }
}

/// The full-profile table J: each distinct profile's key, count and hash, by id.
#[derive(Clone)]
struct Profiles {
    words: usize,
    keys: Vec<u64>,
    counts: Vec<u64>,
    hashes: Vec<u64>,
    index: Index,
}

impl Profiles {
    #[inline(always)]
    fn key(&self, id: u32) -> &[u64] {
        let start = id as usize * self.words;
        &self.keys[start..start + self.words]
    }

    fn len(&self) -> usize {
        self.counts.len()
    }

    /// Adds `by` days of profile `key` (hash `hash`); returns its id.
    #[inline(always)]
    fn add(&mut self, key: &[u64], hash: u64, by: u64) -> u32 {
        self.index.reserve_one();
        let found = {
            let (keys, words) = (&self.keys, self.words);
            self.index.find(hash, |id| {
                let start = id as usize * words;
                keys[start..start + words] == *key
            })
        };
        match found {
            Ok(slot) => {
                let id = self.index.value(slot);
                self.counts[id as usize] += by;
                id
            }
            Err(slot) => {
                let id = self.counts.len() as u32;
                self.keys.extend_from_slice(key);
                self.counts.push(by);
                self.hashes.push(hash);
                self.index.insert_at(slot, hash, id, id);
                id
            }
        }
    }

    /// The id of the profile in group `key`_-player whose player digit is `t`, if seen.
    #[inline]
    fn find_in_group(
        &self,
        layout: &KeyLayout,
        key: &[u64],
        player: usize,
        t: u32,
        hash: u64,
    ) -> Option<u32> {
        let (keys, words) = (&self.keys, self.words);
        self.index
            .find(hash, |id| {
                let start = id as usize * words;
                let other = &keys[start..start + words];
                layout.digit(other, player) == t && layout.same_group(other, key, player)
            })
            .ok()
            .map(|slot| self.index.value(slot))
    }

    fn nbytes(&self) -> usize {
        self.keys.capacity() * 8
            + self.counts.capacity() * 8
            + self.hashes.capacity() * 8
            + self.index.nbytes()
    }
}

pub(super) struct WideLedger<C> {
    pub(super) n: usize,
    pub(super) ks: Vec<usize>,
    pub(super) gamma: f64,
    pub(super) layout: KeyLayout,
    pub(super) day: u64,
    pub(super) players: Vec<WidePlayer<C>>,
    pub(super) complete: bool,
    /// Players with two or more types, or one type of probability other than exactly 1.
    active: Vec<usize>,
    /// The other players: one type of probability 1, so f = h = 0 exactly, every day.
    inert: Vec<usize>,
    /// Zobrist words Z_i(t) at `zoff[i] + t`.
    zob: Vec<u64>,
    zoff: Vec<usize>,
    /// Players `0..split` form half A, the rest half B.
    split: usize,
    sketch_a: Vec<u64>,
    sketch_b: Vec<u64>,
    joint: Profiles,
    floor: FloorCache,
    /// Light mode: every tracked group has M >= keep_floor (see the packed ledger).
    pub(super) keep_floor: f64,
}

impl<C: CountStore> Clone for WideLedger<C> {
    fn clone(&self) -> Self {
        Self {
            n: self.n,
            ks: self.ks.clone(),
            gamma: self.gamma,
            layout: self.layout.clone(),
            day: self.day,
            players: self.players.clone(),
            complete: self.complete,
            active: self.active.clone(),
            inert: self.inert.clone(),
            zob: self.zob.clone(),
            zoff: self.zoff.clone(),
            split: self.split,
            sketch_a: self.sketch_a.clone(),
            sketch_b: self.sketch_b.clone(),
            joint: self.joint.clone(),
            floor: self.floor,
            keep_floor: self.keep_floor,
        }
    }
}

impl<C: CountStore> WideLedger<C> {
    pub(super) fn new(theta: &[f64], ks: &[usize], gamma: f64, layout: KeyLayout) -> Self {
        let n = ks.len();
        let mut state = 0x005E_ED0F_2B1D_5A17_u64;
        let mut zoff = Vec::with_capacity(n);
        let mut zob = Vec::with_capacity(ks.iter().sum());
        for &k in ks {
            zoff.push(zob.len());
            zob.extend((0..k).map(|_| splitmix(&mut state)));
        }
        // halves of about equal key bits
        let total = layout.total_bits();
        let mut acc = 0u64;
        let mut split = n / 2;
        for (i, &k) in ks.iter().enumerate() {
            acc += super::key::bits_for(k) as u64;
            if 2 * acc >= total {
                split = i + 1;
                break;
            }
        }
        let split = split.clamp(1, n.saturating_sub(1).max(1));
        let words = layout.words();
        Self {
            n,
            ks: ks.to_vec(),
            gamma,
            layout,
            day: 0,
            players: split_rows(theta, ks).map(WidePlayer::new).collect(),
            complete: false,
            active: (0..n).filter(|&i| !is_inert(theta, ks, i)).collect(),
            inert: (0..n).filter(|&i| is_inert(theta, ks, i)).collect(),
            zob,
            zoff,
            split,
            sketch_a: vec![0; 1 << SKETCH_LOG2],
            sketch_b: vec![0; 1 << SKETCH_LOG2],
            joint: Profiles {
                words,
                keys: Vec::new(),
                counts: Vec::new(),
                hashes: Vec::new(),
                index: Index::new(),
            },
            floor: FloorCache { day: 0, floor: 0.0 },
            keep_floor: 0.0,
        }
    }

    pub(super) fn distinct_profiles(&self) -> usize {
        self.joint.len()
    }

    #[inline(always)]
    fn z(&self, player: usize, t: u32) -> u64 {
        self.zob[self.zoff[player] + t as usize]
    }

    #[inline(always)]
    fn bucket(hash: u64) -> usize {
        (hash.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> (64 - SKETCH_LOG2)) as usize
    }

    /// Key words, full hash and half-A hash of a profile given digit by digit.
    #[inline(always)]
    fn encode(&self, digit: impl Fn(usize) -> u32, key: &mut [u64]) -> (u64, u64) {
        key.fill(0);
        let (mut full, mut half) = (0u64, 0u64);
        for i in 0..self.n {
            let t = digit(i);
            let (w, s) = self.layout.locate(i);
            key[w] |= (t as u64) << s;
            let z = self.z(i, t);
            full ^= z;
            if i < self.split {
                half ^= z;
            }
        }
        (full, half)
    }

    /// Adds `by` days of a profile to J, the marginals and the sketches; returns its id and
    /// the sketch bounds for players of half A and of half B.
    #[inline(always)]
    fn add_profile(&mut self, key: &[u64], full: u64, half_a: u64, by: u64) -> (u32, u64, u64) {
        let id = self.joint.add(key, full, by);
        let a = &mut self.sketch_a[Self::bucket(half_a)];
        *a += by;
        let bound_b = *a; // bounds M for players of half B
        let b = &mut self.sketch_b[Self::bucket(full ^ half_a)];
        *b += by;
        let bound_a = *b;
        (id, bound_a, bound_b)
    }

    /// c_t(g) for the group of profile `key` without `player` (hash of the group: `ghash`).
    fn read_back(&self, key: &[u64], ghash: u64, player: usize, out: &mut Vec<(u32, u64)>) -> u64 {
        out.clear();
        let mut m = 0;
        for t in 0..self.ks[player] as u32 {
            let hash = ghash ^ self.z(player, t);
            if let Some(id) = self.joint.find_in_group(&self.layout, key, player, t, hash) {
                let c = self.joint.counts[id as usize];
                out.push((t, c));
                m += c;
            }
        }
        m
    }

    /// Keeps every group of every active player from now on (by class).
    fn ensure_complete(&mut self) {
        if self.complete {
            return;
        }
        for &i in &self.active {
            let p = &mut self.players[i];
            p.tracked = Index::new();
            p.records = C::new(self.ks[i]);
            p.heap = IndexedMaxHeap::default();
        }
        for id in 0..self.joint.len() as u32 {
            let count = self.joint.counts[id as usize];
            for a in 0..self.active.len() {
                let i = self.active[a];
                self.observe_all(i, id, count);
            }
        }
        self.complete = true;
    }

    /// Complete mode: `by` more days of profile `id` in player `i`'s group.
    #[inline(always)]
    fn observe_all(&mut self, i: usize, id: u32, by: u64) {
        let key = self.joint.key(id);
        let t = self.layout.digit(key, i);
        let ghash = self.joint.hashes[id as usize] ^ self.z(i, t);
        let (layout, joint) = (&self.layout, &self.joint);
        let p = &mut self.players[i];
        p.groups.reserve_one();
        let found = p.groups.find(ghash, |rep| {
            rep == id || layout.same_group(joint.key(rep), key, i)
        });
        match found {
            Ok(slot) => {
                let a = p.groups.value(slot);
                let b = p.classes.step(a, t, by, &p.theta, &p.theta_desc);
                if b != a {
                    p.groups.set_value(slot, b);
                }
            }
            Err(slot) => {
                let b = p.classes.enter(t, by, &p.theta, &p.theta_desc);
                p.groups.insert_at(slot, ghash, id, b);
            }
        }
    }

    pub(super) fn record<D: Digit>(&mut self, bids: &[D], days: usize, out: RecordOutput<'_>) {
        if out.detail.is_some() {
            self.ensure_complete();
        }
        if self.complete {
            self.record_days::<true, D>(bids, days, out);
        } else {
            self.record_days::<false, D>(bids, days, out);
        }
    }

    fn record_days<const ALL: bool, D: Digit>(
        &mut self,
        bids: &[D],
        days: usize,
        out: RecordOutput<'_>,
    ) {
        let RecordOutput { flags, mut detail } = out;
        let n = self.n;
        let mut key = vec![0u64; self.layout.words()];
        let mut scratch = Vec::new();
        for row in 0..days {
            let profile = &bids[row * n..(row + 1) * n];
            let (full, half_a) = self.encode(|i| profile[i].index() as u32, &mut key);
            self.day += 1;
            let l = self.day;
            let lf = l as f64;
            let mut th = Threshold::new(l, self.gamma, self.floor.get(l, self.gamma));
            if !ALL && th.floor > self.keep_floor {
                self.keep_floor = th.floor;
                for &i in &self.active {
                    self.players[i].purge(th.floor);
                }
            }
            let keep = self.keep_floor;
            let (id, bound_a, bound_b) = self.add_profile(&key, full, half_a, 1);
            for (p, &b) in self.players.iter_mut().zip(profile) {
                p.marginal[b.index()] += 1;
            }
            for a in 0..self.active.len() {
                let i = self.active[a];
                let t = profile[i].index() as u32;
                if ALL {
                    self.observe_all(i, id, 1);
                } else {
                    let bound = if i < self.split { bound_a } else { bound_b };
                    // tracked groups have M >= keep: a bound below it needs no lookup
                    if bound as f64 >= keep {
                        let ghash = full ^ self.z(i, t);
                        let (layout, joint) = (&self.layout, &self.joint);
                        let p = &self.players[i];
                        let found = p.tracked.find(ghash, |rep| {
                            rep == id || layout.same_group(joint.key(rep), &key, i)
                        });
                        match found {
                            Ok(slot) => {
                                let p = &mut self.players[i];
                                let rid = p.tracked.value(slot);
                                p.records.add(rid, t, 1);
                                let v = p.records.discrepancy(rid, &p.theta, &p.theta_desc);
                                p.heap.update(rid, v);
                            }
                            Err(_) => {
                                let m = self.read_back(&key, ghash, i, &mut scratch);
                                if m as f64 >= keep {
                                    let p = &mut self.players[i];
                                    p.tracked.reserve_one();
                                    let slot = p
                                        .tracked
                                        .find(ghash, |_| false)
                                        .expect_err("an empty slot");
                                    p.track(slot, ghash, id, &scratch);
                                }
                            }
                        }
                    }
                }
                let p = &mut self.players[i];
                let top = if ALL {
                    p.classes.top().map(|e| e.0)
                } else {
                    p.heap.top().map(|e| e.0)
                };
                let flag = p.marginal_flag(l, &mut th)
                    || match top {
                        Some(v) => th.crosses(v, |th| {
                            let (lo, _) = th.band();
                            let r = th.r();
                            p.joint_flag_exact(ALL, lo, lf, r)
                        }),
                        None => false,
                    };
                flags[row * n + i] = flag;
                if let Some((marginal, joint)) = detail.as_mut() {
                    marginal[row * n + i] = p.marginal_exact(lf);
                    joint[row * n + i] = p.classes.exact_max_cached(&p.theta, lf);
                }
            }
            // inert players: f and h are exactly zero, never flagged
            for &i in &self.inert {
                flags[row * n + i] = false;
                if let Some((marginal, joint)) = detail.as_mut() {
                    marginal[row * n + i] = 0.0;
                    joint[row * n + i] = 0.0;
                }
            }
        }
    }

    pub(super) fn marginal_counts(&self) -> Vec<u64> {
        self.players
            .iter()
            .flat_map(|p| p.marginal.iter().copied())
            .collect()
    }

    /// M_i(g) of every group of `player` seen so far, as (representative id, M).
    fn group_totals(&self, player: usize) -> Vec<(u32, u64)> {
        let mut index = Index::new();
        let mut totals: Vec<(u32, u64)> = Vec::new();
        for id in 0..self.joint.len() as u32 {
            let key = self.joint.key(id);
            let t = self.layout.digit(key, player);
            let ghash = self.joint.hashes[id as usize] ^ self.z(player, t);
            index.reserve_one();
            let found = index.find(ghash, |rep| {
                rep == id || self.layout.same_group(self.joint.key(rep), key, player)
            });
            let count = self.joint.counts[id as usize];
            match found {
                Ok(slot) => totals[index.value(slot) as usize].1 += count,
                Err(slot) => {
                    index.insert_at(slot, ghash, id, totals.len() as u32);
                    totals.push((id, count));
                }
            }
        }
        totals
    }

    pub(super) fn groups_seen(&self) -> Vec<usize> {
        (0..self.n)
            .map(|i| {
                if self.inert.contains(&i) {
                    self.joint.len()
                } else if self.complete {
                    self.players[i].groups.len()
                } else {
                    self.group_totals(i).len()
                }
            })
            .collect()
    }

    pub(super) fn joint_max(&mut self) -> Vec<f64> {
        self.ensure_complete();
        let lf = self.day as f64;
        (0..self.n)
            .map(|i| {
                if self.day > 0 && !self.inert.contains(&i) {
                    self.players[i]
                        .classes
                        .exact_max(&self.players[i].theta, lf)
                } else {
                    0.0
                }
            })
            .collect()
    }

    pub(super) fn joint_at(&self, profile: &[u32]) -> Vec<f64> {
        let mut key = vec![0u64; self.layout.words()];
        let (full, _) = self.encode(|i| profile[i], &mut key);
        let lf = self.day as f64;
        let j = self
            .joint
            .index
            .find(full, |id| self.joint.key(id) == &key[..])
            .ok()
            .map_or(0, |slot| {
                self.joint.counts[self.joint.index.value(slot) as usize]
            }) as f64;
        let mut scratch = Vec::new();
        (0..self.n)
            .map(|i| {
                let ghash = full ^ self.z(i, profile[i]);
                let m = self.read_back(&key, ghash, i, &mut scratch);
                if m == 0 {
                    return 0.0;
                }
                j / lf - self.players[i].theta[profile[i] as usize] * (m as f64 / lf)
            })
            .collect()
    }

    pub(super) fn worst_profiles(
        &mut self,
        player: usize,
        count: usize,
    ) -> Vec<ProfileDiscrepancy> {
        self.ensure_complete();
        let lf = self.day as f64;
        let p = &self.players[player];
        // (|h|, group key, worst type, h) per group
        let mut members: Vec<(f64, Vec<u64>, u32, f64)> = Vec::new();
        let clear = |key: &[u64]| {
            let mut g = key.to_vec();
            let (w, s) = self.layout.locate(player);
            g[w] &= !(self.layout.mask(player) << s);
            g
        };
        if self.inert.contains(&player) {
            // each profile is its own group; h = J/l - 1 * (J/l) = 0
            for id in 0..self.joint.len() as u32 {
                let j = self.joint.counts[id as usize] as f64 / lf;
                let h = j - p.theta[0] * j;
                members.push((h.abs(), clear(self.joint.key(id)), 0, h));
            }
        } else {
            let counts = p.classes.counts();
            let mut worst: HashMap<u32, (u32, f64)> = HashMap::new();
            for (rep, class) in p.groups.entries() {
                let (t, h) = *worst.entry(class).or_insert_with(|| {
                    let m_over_l = counts.total(class) as f64 / lf;
                    (0..self.ks[player] as u32)
                        .map(|t| {
                            let h =
                                counts.count(class, t) as f64 / lf - p.theta[t as usize] * m_over_l;
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
                members.push((h.abs(), clear(self.joint.key(rep)), t, h));
            }
        }
        let order = |a: &(f64, Vec<u64>, u32, f64), b: &(f64, Vec<u64>, u32, f64)| {
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
            .map(|(_, mut key, t, value)| {
                let (w, s) = self.layout.locate(player);
                key[w] |= (t as u64) << s;
                let mut profile = vec![0u32; self.n];
                self.layout.unpack(&key, &mut profile);
                ProfileDiscrepancy { profile, value }
            })
            .collect()
    }

    /// Distinct profile ids ordered by key.
    fn sorted_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.joint.len() as u32).collect();
        ids.sort_unstable_by(|&a, &b| self.joint.key(a).cmp(self.joint.key(b)));
        ids
    }

    pub(super) fn profile_counts(&self) -> (Vec<u32>, Vec<u64>) {
        let mut profiles = Vec::with_capacity(self.joint.len() * self.n);
        let mut counts = Vec::with_capacity(self.joint.len());
        let mut digits = vec![0u32; self.n];
        for id in self.sorted_ids() {
            self.layout.unpack(self.joint.key(id), &mut digits);
            profiles.extend_from_slice(&digits);
            counts.push(self.joint.counts[id as usize]);
        }
        (profiles, counts)
    }

    pub(super) fn nbytes(&self) -> usize {
        self.joint.nbytes()
            + (self.sketch_a.capacity() + self.sketch_b.capacity() + self.zob.capacity()) * 8
            + self.players.iter().map(WidePlayer::nbytes).sum::<usize>()
    }

    pub(super) fn write_profiles(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&(self.joint.len() as u64).to_le_bytes());
        for id in self.sorted_ids() {
            for w in self.joint.key(id) {
                buf.extend_from_slice(&w.to_le_bytes());
            }
            buf.extend_from_slice(&self.joint.counts[id as usize].to_le_bytes());
        }
    }

    /// Rebuilds every table from stored profiles (`next` fills the digits of the next one
    /// and returns its count; profiles arrive distinct) and checks the marginal counts.
    pub(super) fn restore(
        &mut self,
        reader: &mut Reader<'_>,
        next: &mut dyn FnMut(&mut Reader<'_>, &mut [u32]) -> CoreResult<u64>,
        marginal: &[u64],
        day: u64,
        complete: bool,
    ) -> CoreResult<()> {
        let corrupt = |m: String| CoreError::CorruptState(m);
        let profiles = reader.u64("the number of profiles")?;
        if profiles > day || profiles > MAX_PROFILES {
            return Err(corrupt(format!(
                "{profiles} distinct profiles for {day} days"
            )));
        }
        let mut digits = vec![0u32; self.n];
        let mut key = vec![0u64; self.layout.words()];
        let mut total = 0u64;
        for _ in 0..profiles {
            let count = next(reader, &mut digits)?;
            total = total
                .checked_add(count)
                .ok_or_else(|| corrupt("counts overflow".into()))?;
            let (full, half_a) = self.encode(|i| digits[i], &mut key);
            let before = self.joint.len();
            self.add_profile(&key, full, half_a, count);
            if self.joint.len() == before {
                return Err(corrupt("a profile is listed twice".into()));
            }
            for (p, &t) in self.players.iter_mut().zip(&digits) {
                p.marginal[t as usize] += count;
            }
        }
        if total != day {
            return Err(corrupt(format!(
                "profile counts add up to {total} days, not {day}"
            )));
        }
        if self.marginal_counts() != marginal {
            return Err(corrupt(
                "marginal counts disagree with the profile counts".into(),
            ));
        }
        self.day = day;
        if complete {
            self.ensure_complete();
        } else {
            let bound = band_floor(day.max(1), self.gamma);
            self.keep_floor = bound;
            let mut counts = Vec::new();
            for a in 0..self.active.len() {
                let i = self.active[a];
                for (rep, m) in self.group_totals(i) {
                    if (m as f64) < bound {
                        continue;
                    }
                    let key = self.joint.key(rep).to_vec();
                    let t = self.layout.digit(&key, i);
                    let ghash = self.joint.hashes[rep as usize] ^ self.z(i, t);
                    self.read_back(&key, ghash, i, &mut counts);
                    let p = &mut self.players[i];
                    p.tracked.reserve_one();
                    let slot = p.tracked.find(ghash, |_| false).expect_err("an empty slot");
                    p.track(slot, ghash, rep, &counts);
                }
            }
        }
        Ok(())
    }
}
