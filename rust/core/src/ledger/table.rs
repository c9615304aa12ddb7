//! Open-addressing hash table of packed profile keys with a 64-bit count and an optional tag.
//!
//! The ledger keeps one such table for the full profiles (count = J(d), no tag) and, in the
//! light mode, one per player for its tracked groups d_-i (count = M(d_-i), tag = the group's
//! count record).
//!
//! Written here rather than taken from a map crate because the per-day loop prefetches the
//! home slot of a day's keys several days ahead, which needs the slot address before lookup.
//! Linear probing, power-of-two capacity, load factor at most 1/2, multiplicative hashing
//! that keeps the TOP bits (clearing one player's digit leaves low bits constant). A slot is
//! empty when its count is 0: every stored key has been seen at least once.
//!
//! [`GroupTable`] is the complete mode's table of a player's groups: key -> count-vector class
//! (the class knows M, so no count is stored). Its slots are W + 1 words in one flat `u64`
//! buffer whose empty state is all zeros, so a new table is a zeroed allocation: the kernel
//! hands out zero pages and nothing is written to the table until a key lands in a slot.

/// One entry: a key, its count and a tag (`()`: none, so the slot is W + 1 words).
#[derive(Clone, Copy, Debug)]
pub struct Slot<const W: usize, T> {
    pub key: [u64; W],
    pub count: u64,
    pub tag: T,
}

const EMPTY_SLOT_COUNT: u64 = 0;

/// Hash table from keys to (count, tag).
#[derive(Clone)]
pub struct CountTable<const W: usize, T = ()> {
    slots: Vec<Slot<W, T>>,
    shift: u32,
    len: usize,
}

/// The hash of a key; the table takes its top bits.
#[inline(always)]
pub fn hash_key<const W: usize>(key: &[u64; W]) -> u64 {
    const M: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = key[0].wrapping_mul(M);
    for &w in &key[1..] {
        h = (h.rotate_left(29) ^ w).wrapping_mul(M);
    }
    h
}

/// Tags whose all-zero bit pattern is a valid value (tables are allocated zeroed).
///
/// # Safety
/// Implementors must be plain data for which every byte being zero is a valid value.
pub unsafe trait ZeroTag: Copy + Default {}
// SAFETY: the unit type has no bytes.
unsafe impl ZeroTag for () {}
// SAFETY: every bit pattern, zero included, is a valid u32.
unsafe impl ZeroTag for u32 {}

impl<const W: usize, T: ZeroTag> Default for CountTable<W, T> {
    fn default() -> Self {
        Self::with_log2(4)
    }
}

impl<const W: usize, T: ZeroTag> CountTable<W, T> {
    fn with_log2(log2: u32) -> Self {
        let len = 1usize << log2;
        // a zeroed allocation: large tables come fresh (and lazily) from the kernel instead
        // of being written here, and an all-zero slot is empty (count 0)
        let layout = std::alloc::Layout::array::<Slot<W, T>>(len).expect("a table size in range");
        // SAFETY: the layout has a nonzero size (len >= 16, a slot holds at least two words);
        // the pointer is checked for null; every all-zero slot is a valid value ([u64; W],
        // u64 and a `ZeroTag`), so the vector's `len` elements are initialized; capacity and
        // alignment are those of the layout it was allocated with, by the global allocator.
        let mut slots = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Slot<W, T>>();
            if ptr.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Vec::from_raw_parts(ptr, len, len)
        };
        crate::ledger::advise_huge_pages(&mut slots);
        Self {
            slots,
            shift: 64 - log2,
            len: 0,
        }
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<W, T>>()
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// Hints the CPU to fetch the home slot of `hash`. Never changes behaviour.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        crate::ledger::prefetch_read(self.slots.as_ptr().wrapping_add(self.home(hash)));
    }

    /// The slot of `key`, if present.
    pub fn get(&self, key: &[u64; W]) -> Option<&Slot<W, T>> {
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash_key(key));
        loop {
            let slot = &self.slots[idx];
            if slot.count == EMPTY_SLOT_COUNT {
                return None;
            }
            if slot.key == *key {
                return Some(slot);
            }
            idx = (idx + 1) & mask;
        }
    }

    /// The slot of `key` (whose hash is `hash`), mutably, if present.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &[u64; W], hash: u64) -> Option<&mut Slot<W, T>> {
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash);
        loop {
            let slot = &self.slots[idx];
            if slot.count == EMPTY_SLOT_COUNT {
                return None;
            }
            if slot.key == *key {
                return Some(&mut self.slots[idx]);
            }
            idx = (idx + 1) & mask;
        }
    }

    /// The count of `key` (0 when absent).
    #[inline]
    pub fn count(&self, key: &[u64; W]) -> u64 {
        self.get(key).map_or(0, |s| s.count)
    }

    /// Adds `by >= 1` to the count of `key` (hash `hash`), inserting it when new.
    /// Returns the slot and whether the key was inserted.
    #[inline(always)]
    pub fn add(&mut self, key: &[u64; W], hash: u64, by: u64) -> (&mut Slot<W, T>, bool) {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut idx = self.home(hash);
        loop {
            let slot = &self.slots[idx];
            if slot.count == EMPTY_SLOT_COUNT || slot.key == *key {
                break;
            }
            idx = (idx + 1) & mask;
        }
        let slot = &mut self.slots[idx];
        let inserted = slot.count == EMPTY_SLOT_COUNT;
        if inserted {
            slot.key = *key;
            self.len += 1;
        }
        slot.count += by;
        (slot, inserted)
    }

    #[cold]
    fn grow(&mut self) {
        self.rehash(64 - self.shift + 1);
    }

    /// Moves every key to a table of 2^`log2` slots.
    #[cold]
    fn rehash(&mut self, log2: u32) {
        let mut bigger = Self::with_log2(log2);
        let mask = bigger.slots.len() - 1;
        for slot in self.slots.iter().filter(|s| s.count != EMPTY_SLOT_COUNT) {
            let mut idx = bigger.home(hash_key(&slot.key));
            while bigger.slots[idx].count != EMPTY_SLOT_COUNT {
                idx = (idx + 1) & mask;
            }
            bigger.slots[idx] = *slot;
        }
        bigger.len = self.len;
        *self = bigger;
    }

    /// Grows (never shrinks) the table so that `keys` keys fit at load at most 1/2, in one
    /// step.
    pub fn reserve_total(&mut self, keys: usize) {
        let mut log2 = 64 - self.shift;
        while keys.saturating_mul(2) > 1usize << log2 {
            log2 += 1;
        }
        if log2 > 64 - self.shift {
            self.rehash(log2);
        }
    }

    /// Adds one day of each key in `keys` (the same counts as calling [`Self::add`] on each),
    /// with room made first for `distinct` keys in all (an upper bound on the table's length
    /// afterwards). The table grows at most once, and each key's home slot is fetched a few
    /// keys ahead, so the cache misses of a large table overlap.
    pub fn add_batch(&mut self, keys: &[[u64; W]], distinct: usize) {
        self.reserve_total(distinct.min(self.len.saturating_add(keys.len())));
        // the keys' home slots are fetched a few keys ahead, so the misses overlap
        const AHEAD: usize = 32;
        for key in keys.iter().take(AHEAD) {
            self.prefetch(hash_key(key));
        }
        for (i, key) in keys.iter().enumerate() {
            if let Some(next) = keys.get(i + AHEAD) {
                self.prefetch(hash_key(next));
            }
            self.add(key, hash_key(key), 1);
        }
    }

    /// The occupied slots, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Slot<W, T>> {
        self.slots.iter().filter(|s| s.count != EMPTY_SLOT_COUNT)
    }
}

/// Hash table from group keys to class ids (see the module docs).
#[derive(Clone)]
pub struct GroupTable<const W: usize> {
    /// Slots of `stride` words, all zero when empty. Wide: the key's W words, then class
    /// id + 1. Packed (W = 1 and keys below 2^32): one word, key | (class id + 1) << 32.
    words: Vec<u64>,
    stride: usize,
    shift: u32,
    len: usize,
    /// Keys the table may hold by the end of the current batch (a growth hint).
    horizon: usize,
}

/// The key half of a packed slot.
const LOW: u64 = u32::MAX as u64;

impl<const W: usize> GroupTable<W> {
    /// An empty table; `packed` (allowed when W = 1 and every key is below 2^32) stores each
    /// slot in one word.
    pub fn new(packed: bool) -> Self {
        Self::with_log2(4, if packed && W == 1 { 1 } else { W + 1 })
    }

    fn with_log2(log2: u32, stride: usize) -> Self {
        // `vec![0; n]` is a zeroed allocation: large buffers come fresh (and lazily) from the
        // kernel instead of being written here
        let mut words = vec![0u64; (1usize << log2) * stride];
        crate::ledger::advise_huge_pages(&mut words);
        Self {
            words,
            stride,
            shift: 64 - log2,
            len: 0,
            horizon: 0,
        }
    }

    #[inline(always)]
    fn packed(&self) -> bool {
        W == 1 && self.stride == 1
    }

    #[inline(always)]
    fn capacity(&self) -> usize {
        1 << (64 - self.shift)
    }

    /// Number of keys stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.words.capacity() * 8
    }

    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    /// Hints the CPU to fetch the home slot of `hash`. Never changes behaviour.
    #[inline(always)]
    pub fn prefetch(&self, hash: u64) {
        let at = self.home(hash) * self.stride;
        crate::ledger::prefetch_read(self.words.as_ptr().wrapping_add(at));
    }

    /// Declares that at most `more` keys will be added before the next call: growth may then
    /// skip sizes the table cannot need to pass through. A hint; it never allocates.
    pub fn expect(&mut self, more: usize) {
        self.horizon = self.len.saturating_add(more);
    }

    /// Grows the table at once to hold `keys` keys in all (load at most 1/2), capped by the
    /// horizon: for a batch known to bring many new keys, this skips the intermediate tables
    /// (each a rebuild and fresh memory) that growing step by step would pass through.
    pub fn reserve_total(&mut self, keys: usize) {
        let keys = keys.min(self.horizon);
        if keys.saturating_mul(2) > self.capacity() {
            let log2 = keys.saturating_mul(2).next_power_of_two().trailing_zeros();
            self.rebuild(log2);
        }
    }

    /// Makes room for one new key (load at most 1/2).
    #[inline(always)]
    pub fn reserve_one(&mut self) {
        if (self.len + 1) * 2 > self.capacity() {
            self.grow();
        }
    }

    /// The slot of `key` (hash `hash`): `Ok` with its index when present, `Err` with the
    /// empty slot where it would go otherwise (valid until the next insertion or growth).
    #[inline(always)]
    pub fn find(&self, key: &[u64; W], hash: u64) -> Result<usize, usize> {
        let mask = self.capacity() - 1;
        let mut idx = self.home(hash);
        if self.packed() {
            loop {
                let word = self.words[idx];
                if word == 0 {
                    return Err(idx);
                }
                if word & LOW == key[0] {
                    return Ok(idx);
                }
                idx = (idx + 1) & mask;
            }
        }
        loop {
            let slot = &self.words[idx * self.stride..idx * self.stride + W + 1];
            if slot[W] == 0 {
                return Err(idx);
            }
            if slot[..W] == key[..] {
                return Ok(idx);
            }
            idx = (idx + 1) & mask;
        }
    }

    /// The class of the key in occupied slot `idx`.
    #[inline(always)]
    pub fn class_at(&self, idx: usize) -> u32 {
        if self.packed() {
            ((self.words[idx] >> 32) - 1) as u32
        } else {
            (self.words[idx * self.stride + W] - 1) as u32
        }
    }

    /// Sets the class of the key in occupied slot `idx`.
    #[inline(always)]
    pub fn set_class(&mut self, idx: usize, class: u32) {
        let tag = class as u64 + 1;
        if self.packed() {
            self.words[idx] = (self.words[idx] & LOW) | tag << 32;
        } else {
            self.words[idx * self.stride + W] = tag;
        }
    }

    /// Stores a new key with its class in the empty slot `idx` returned by [`Self::find`];
    /// the caller has made room for it.
    #[inline(always)]
    pub fn insert_at(&mut self, idx: usize, key: &[u64; W], class: u32) {
        let tag = class as u64 + 1;
        if self.packed() {
            debug_assert!(key[0] <= LOW);
            self.words[idx] = key[0] | tag << 32;
        } else {
            let slot = &mut self.words[idx * self.stride..idx * self.stride + W + 1];
            slot[..W].copy_from_slice(key);
            slot[W] = tag;
        }
        self.len += 1;
    }

    /// Grows 4-fold (a full table is rebuilt, so fewer, larger steps mean less copying and
    /// fewer fresh pages), but no larger than the horizon asks (at least 2-fold).
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let log2 = 64 - self.shift;
        let wanted = self.horizon.max(self.len + 1).saturating_mul(2);
        let cap_log2 = wanted.next_power_of_two().trailing_zeros();
        self.rebuild((log2 + 2).min(cap_log2).max(log2 + 1));
    }

    fn rebuild(&mut self, log2: u32) {
        let mut bigger = Self::with_log2(log2.max(4), self.stride);
        let mask = bigger.capacity() - 1;
        for (key, class) in self.iter() {
            let mut idx = bigger.home(hash_key(&key));
            while bigger.words[idx * bigger.stride + bigger.stride - 1] != 0 {
                idx = (idx + 1) & mask;
            }
            bigger.insert_at(idx, &key, class);
        }
        bigger.horizon = self.horizon;
        *self = bigger;
    }

    /// The stored (key, class) pairs, in table order.
    pub fn iter(&self) -> impl Iterator<Item = ([u64; W], u32)> + '_ {
        let packed = self.packed();
        self.words
            .chunks_exact(self.stride)
            .filter(|s| s[s.len() - 1] != 0)
            .map(move |s| {
                let mut key = [0u64; W];
                if packed {
                    key[0] = s[0] & LOW;
                    (key, ((s[0] >> 32) - 1) as u32)
                } else {
                    key.copy_from_slice(&s[..W]);
                    (key, (s[W] - 1) as u32)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn exercise_group_table<const W: usize>(packed: bool, horizon: usize) {
        let mut table = GroupTable::<W>::new(packed);
        table.expect(horizon);
        let mut reference: HashMap<[u64; W], u32> = HashMap::new();
        let mut state = 777u64;
        for step in 0..30_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // zero keys are legal (a group key may be all zeros); packed keys have 32 bits
            let mut key = [0u64; W];
            key[0] = state >> 52 | (state & 1) << 31;
            key[W - 1] |= (state >> 20) & 3;
            let hash = hash_key(&key);
            if step % 1000 == 0 {
                table.expect(horizon.max(500));
            }
            if step % 7000 == 3 {
                // growing at once to a size for more keys keeps every key in place
                let keys = (table.len() + 3000).min(table.horizon);
                table.reserve_total(table.len() + 3000);
                assert!(table.capacity() >= 2 * keys);
            }
            table.reserve_one();
            // class ids use all 32 bits
            let class = step.wrapping_mul(0x9E37_79B9) % u32::MAX;
            match table.find(&key, hash) {
                Ok(idx) => {
                    assert_eq!(Some(&table.class_at(idx)), reference.get(&key));
                    table.set_class(idx, class);
                }
                Err(idx) => {
                    assert!(!reference.contains_key(&key));
                    table.insert_at(idx, &key, class);
                }
            }
            reference.insert(key, class);
        }
        assert_eq!(table.len(), reference.len());
        assert_eq!(table.iter().count(), reference.len());
        for (key, class) in table.iter() {
            assert_eq!(reference[&key], class);
        }
        // never more than 4 slots per key beyond what the horizon asked for
        let keys = reference.len().max(horizon);
        assert!(
            table.capacity() <= 4 * keys.next_power_of_two(),
            "{horizon}"
        );
    }

    #[test]
    fn group_table_behaves_like_a_map() {
        for horizon in [0, 100, 1 << 20] {
            exercise_group_table::<1>(true, horizon);
            exercise_group_table::<1>(false, horizon);
            exercise_group_table::<2>(false, horizon);
        }
    }

    #[test]
    fn behaves_like_a_map_of_counts() {
        let mut table = CountTable::<2, u32>::default();
        let mut reference: HashMap<[u64; 2], u64> = HashMap::new();
        let mut state = 12345u64;
        for step in 0..20_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = [state >> 50, (state >> 20) & 7];
            let by = step % 3 + 1;
            let (slot, inserted) = table.add(&key, hash_key(&key), by);
            let was = reference.get(&key).copied();
            *reference.entry(key).or_insert(0) += by;
            assert_eq!(inserted, was.is_none());
            assert_eq!(slot.count, reference[&key]);
        }
        assert_eq!(table.len(), reference.len());
        for (k, v) in &reference {
            assert_eq!(table.count(k), *v);
        }
        assert_eq!(table.count(&[u64::MAX, 0]), 0);
        assert_eq!(table.iter().count(), reference.len());
    }
}
