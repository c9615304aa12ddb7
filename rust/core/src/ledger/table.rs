//! Open-addressing hash table of packed profile keys with a 64-bit count and an optional tag.
//!
//! The ledger keeps one such table for the full profiles (count = J(d), no tag) and one per
//! player for its groups d_-i (count = M(d_-i), tag = the group's count record, if it has one).
//!
//! Written here rather than taken from a map crate because the per-day loop prefetches the
//! home slot of a day's keys several days ahead, which needs the slot address before lookup.
//! Linear probing, power-of-two capacity, load factor at most 1/2, multiplicative hashing
//! that keeps the TOP bits (clearing one player's digit leaves low bits constant). A slot is
//! empty when its count is 0: every stored key has been seen at least once.

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

impl<const W: usize, T: Copy + Default> Default for CountTable<W, T> {
    fn default() -> Self {
        Self::with_log2(4)
    }
}

impl<const W: usize, T: Copy + Default> CountTable<W, T> {
    fn with_log2(log2: u32) -> Self {
        let empty = Slot {
            key: [0; W],
            count: EMPTY_SLOT_COUNT,
            tag: T::default(),
        };
        let mut slots = Vec::with_capacity(1usize << log2);
        crate::ledger::advise_huge_pages(&mut slots);
        slots.resize(1usize << log2, empty);
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
        let mut bigger = Self::with_log2(64 - self.shift + 1);
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

    /// The occupied slots, in table order.
    pub fn iter(&self) -> impl Iterator<Item = &Slot<W, T>> {
        self.slots.iter().filter(|s| s.count != EMPTY_SLOT_COUNT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
