//! Indexed max-heap over group ids keyed by their discrepancy.
//!
//! A group's discrepancy goes down as well as up (a bid can move J toward theta * M), so a
//! running maximum or an increase-only heap would be wrong; the position array lets any member
//! be updated in place in O(log G).

/// Position marker of a group that is not in the heap.
pub const ABSENT: u32 = u32::MAX;

/// Max-heap of (value, group id) with a position index per group id.
#[derive(Clone, Default)]
pub struct IndexedMaxHeap {
    entries: Vec<(f64, u32)>,
    pos: Vec<u32>,
}

impl IndexedMaxHeap {
    /// Registers group ids up to `gid` (absent from the heap).
    #[inline(always)]
    pub fn register(&mut self, gid: u32) {
        let need = gid as usize + 1;
        if self.pos.len() < need {
            self.pos.resize(need, ABSENT);
        }
    }

    /// Whether `gid` is in the heap.
    #[cfg(test)]
    pub fn contains(&self, gid: u32) -> bool {
        self.pos[gid as usize] != ABSENT
    }

    /// The largest (value, group id).
    #[inline(always)]
    pub fn top(&self) -> Option<(f64, u32)> {
        self.entries.first().copied()
    }

    /// The value of member `gid`.
    #[inline(always)]
    pub fn value(&self, gid: u32) -> f64 {
        self.entries[self.pos[gid as usize] as usize].0
    }

    /// Bytes held.
    pub fn nbytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(f64, u32)>() + self.pos.capacity() * 4
    }

    /// Inserts a registered, absent group.
    #[inline(always)]
    pub fn push(&mut self, gid: u32, value: f64) {
        let i = self.entries.len();
        self.entries.push((value, gid));
        self.pos[gid as usize] = i as u32;
        self.sift_up(i);
    }

    /// Changes the value of a member.
    #[inline(always)]
    pub fn update(&mut self, gid: u32, value: f64) {
        let i = self.pos[gid as usize] as usize;
        let old = self.entries[i].0;
        self.entries[i].0 = value;
        if value > old {
            self.sift_up(i);
        } else if value < old {
            self.sift_down(i);
        }
    }

    /// Removes a member.
    #[inline]
    pub fn remove(&mut self, gid: u32) {
        let i = self.pos[gid as usize] as usize;
        self.pos[gid as usize] = ABSENT;
        let Some(last) = self.entries.pop() else {
            return;
        };
        if i < self.entries.len() {
            let old = self.entries[i].0;
            self.place(i, last);
            if last.0 > old {
                self.sift_up(i);
            } else if last.0 < old {
                self.sift_down(i);
            }
        }
    }

    /// Calls `visit` on members with value >= `threshold`, top first and parents before
    /// children, until it has been called `limit` times; returns how many it visited.
    #[inline]
    pub fn visit_at_least(
        &self,
        threshold: f64,
        limit: usize,
        visit: &mut impl FnMut(u32),
    ) -> usize {
        let mut done = 0;
        self.visit_from(0, threshold, limit, &mut done, visit);
        done
    }

    fn visit_from(
        &self,
        i: usize,
        threshold: f64,
        limit: usize,
        done: &mut usize,
        visit: &mut impl FnMut(u32),
    ) {
        match self.entries.get(i) {
            Some(&(value, gid)) if value >= threshold && *done < limit => {
                visit(gid);
                *done += 1;
                self.visit_from(2 * i + 1, threshold, limit, done, visit);
                self.visit_from(2 * i + 2, threshold, limit, done, visit);
            }
            _ => {}
        }
    }

    /// Pushes the group ids of all members with value >= `threshold` into `out`.
    pub fn members_at_least(&self, threshold: f64, out: &mut Vec<u32>) {
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            if i < self.entries.len() && self.entries[i].0 >= threshold {
                out.push(self.entries[i].1);
                stack.push(2 * i + 1);
                stack.push(2 * i + 2);
            }
        }
    }

    /// Members as (value, gid), in heap order.
    #[cfg(test)]
    pub fn members(&self) -> &[(f64, u32)] {
        &self.entries
    }

    #[inline(always)]
    fn place(&mut self, i: usize, entry: (f64, u32)) {
        self.entries[i] = entry;
        self.pos[entry.1 as usize] = i as u32;
    }

    #[inline(always)]
    fn sift_up(&mut self, mut i: usize) {
        let entry = self.entries[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.entries[parent];
            if p.0 >= entry.0 {
                break;
            }
            self.place(i, p);
            i = parent;
        }
        self.place(i, entry);
    }

    #[inline(always)]
    fn sift_down(&mut self, mut i: usize) {
        let n = self.entries.len();
        let entry = self.entries[i];
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.entries[right].0 > self.entries[left].0 {
                right
            } else {
                left
            };
            if self.entries[child].0 <= entry.0 {
                break;
            }
            let c = self.entries[child];
            self.place(i, c);
            i = child;
        }
        self.place(i, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_keep_the_heap_exact() {
        let mut heap = IndexedMaxHeap::default();
        let mut values = vec![f64::NAN; 200];
        let mut state = 7u64;
        for step in 0..40_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let gid = ((state >> 33) % 200) as u32;
            let value = ((state >> 11) % 500) as f64 / 3.0;
            heap.register(gid);
            match (heap.contains(gid), step % 3) {
                (true, 0) => {
                    heap.remove(gid);
                    values[gid as usize] = f64::NAN;
                }
                (true, _) => {
                    heap.update(gid, value);
                    values[gid as usize] = value;
                }
                (false, _) => {
                    heap.push(gid, value);
                    values[gid as usize] = value;
                }
            }
            let live = values.iter().filter(|v| !v.is_nan()).count();
            assert_eq!(heap.members().len(), live);
            let best = values
                .iter()
                .cloned()
                .filter(|v| !v.is_nan())
                .fold(f64::MIN, f64::max);
            assert_eq!(heap.top().map(|e| e.0), (live > 0).then_some(best));
            if step % 31 == 0 && live > 0 {
                let cut = best - 20.0;
                let mut seen = Vec::new();
                let all = heap.visit_at_least(cut, usize::MAX, &mut |g| seen.push(g));
                let expected = values.iter().filter(|v| !v.is_nan() && **v >= cut).count();
                assert_eq!((all, seen.len()), (expected, expected));
                assert_eq!(values[seen[0] as usize], best);
                assert_eq!(heap.visit_at_least(cut, 2, &mut |_| ()), expected.min(2));
            }
        }
    }

    #[test]
    fn matches_a_linear_scan_under_random_updates() {
        let mut heap = IndexedMaxHeap::default();
        let mut values = vec![f64::NAN; 300];
        let mut state = 99u64;
        for step in 0..50_000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let gid = ((state >> 33) % 300) as u32;
            let value = ((state >> 11) % 1000) as f64 / 7.0;
            heap.register(gid);
            if heap.contains(gid) {
                heap.update(gid, value);
            } else {
                heap.push(gid, value);
            }
            values[gid as usize] = value;
            if step % 97 == 0 {
                let best = values
                    .iter()
                    .cloned()
                    .filter(|v| !v.is_nan())
                    .fold(f64::MIN, f64::max);
                assert_eq!(heap.top().unwrap().0, best);
                let mut members = Vec::new();
                heap.members_at_least(best / 2.0, &mut members);
                let expected = values
                    .iter()
                    .filter(|v| !v.is_nan() && **v >= best / 2.0)
                    .count();
                assert_eq!(members.len(), expected);
            }
        }
    }
}
