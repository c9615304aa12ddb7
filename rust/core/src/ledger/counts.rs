//! Per-group counts of one player: M(g) = days whose profile without the player is g, and
//! c_t(g) = days with that profile and the player's bid t (so c_t = J(g, t) and sum_t c_t = M).
//!
//! Two stores behind one trait: a dense arena of (K + 1) 64-bit counts per group for small K,
//! and a sparse list of the types seen per group (sorted by type) for large K, where dense
//! blocks would cost 2 KiB per group at K = 256.
//!
//! The light mode keeps one entry per tracked group; the complete mode keeps one entry per
//! count-vector class ([`super::classes`]), and reuses the entries of reclaimed classes.

/// Operations the ledger needs on the counts of one player's groups.
pub trait CountStore: Clone + Send + Sync {
    /// An empty store for `k` types.
    fn new(k: usize) -> Self;
    /// Appends a new, empty group and returns its id.
    fn push_group(&mut self) -> u32;
    /// Number of groups.
    fn len(&self) -> usize;
    /// Sets group `g` to the counts of group `src` (`None`: all zero).
    fn assign(&mut self, g: u32, src: Option<u32>);
    /// Whether group `b`'s counts equal those of `a` (`None`: all zero) plus `by` of type `t`.
    fn is_step_of(&self, b: u32, a: Option<u32>, t: u32, by: u64) -> bool;
    /// Adds `count` observations of type `t` to group `g`; returns the new M(g).
    fn add(&mut self, g: u32, t: u32, count: u64) -> u64;
    /// M(g).
    fn total(&self, g: u32) -> u64;
    /// c_t(g).
    fn count(&self, g: u32, t: u32) -> u64;
    /// v(g) = max_t |c_t - theta_t M| (a scaled discrepancy; fast path only).
    fn discrepancy(&self, g: u32, theta: &[f64], theta_desc: &[u32]) -> f64;
    /// max_t |c_t / l - theta_t (M / l)|, computed exactly as eq. (8) reads.
    fn exact_stat(&self, g: u32, theta: &[f64], l: f64) -> f64;
    /// Bytes held.
    fn nbytes(&self) -> usize;
}

/// Dense store: (K + 1) counts per group, `[M, c_0, ..., c_{K-1}]`.
#[derive(Clone)]
pub struct DenseCounts {
    stride: usize,
    data: Vec<u64>,
}

impl CountStore for DenseCounts {
    fn new(k: usize) -> Self {
        Self {
            stride: k + 1,
            data: Vec::new(),
        }
    }

    #[inline(always)]
    fn push_group(&mut self) -> u32 {
        let id = self.len() as u32;
        self.data.resize(self.data.len() + self.stride, 0);
        id
    }

    fn len(&self) -> usize {
        self.data.len() / self.stride
    }

    fn assign(&mut self, g: u32, src: Option<u32>) {
        let base = g as usize * self.stride;
        match src {
            Some(a) => {
                let from = a as usize * self.stride;
                self.data.copy_within(from..from + self.stride, base);
            }
            None => self.data[base..base + self.stride].fill(0),
        }
    }

    #[inline(always)]
    fn is_step_of(&self, b: u32, a: Option<u32>, t: u32, by: u64) -> bool {
        let bb = b as usize * self.stride;
        let block = &self.data[bb..bb + self.stride];
        let Some(a) = a else {
            return block[0] == by && block[1 + t as usize] == by;
        };
        let ab = a as usize * self.stride;
        let base = &self.data[ab..ab + self.stride];
        let bumped = 1 + t as usize;
        block[0] == base[0].wrapping_add(by)
            && block.iter().zip(base).enumerate().all(|(s, (&x, &y))| {
                s == 0 || x == if s == bumped { y.wrapping_add(by) } else { y }
            })
    }

    #[inline(always)]
    fn add(&mut self, g: u32, t: u32, count: u64) -> u64 {
        let base = g as usize * self.stride;
        let block = &mut self.data[base..base + self.stride];
        block[0] += count;
        block[1 + t as usize] += count;
        block[0]
    }

    #[inline(always)]
    fn total(&self, g: u32) -> u64 {
        self.data[g as usize * self.stride]
    }

    #[inline(always)]
    fn count(&self, g: u32, t: u32) -> u64 {
        self.data[g as usize * self.stride + 1 + t as usize]
    }

    #[inline(always)]
    fn discrepancy(&self, g: u32, theta: &[f64], _theta_desc: &[u32]) -> f64 {
        let base = g as usize * self.stride;
        let block = &self.data[base..base + self.stride];
        let m = block[0] as f64;
        let mut best = 0.0f64;
        for (&c, &p) in block[1..].iter().zip(theta) {
            best = best.max((c as f64 - p * m).abs());
        }
        best
    }

    fn exact_stat(&self, g: u32, theta: &[f64], l: f64) -> f64 {
        let base = g as usize * self.stride;
        let block = &self.data[base..base + self.stride];
        let m_over_l = block[0] as f64 / l;
        let mut best = 0.0f64;
        for (&c, &p) in block[1..].iter().zip(theta) {
            best = best.max((c as f64 / l - p * m_over_l).abs());
        }
        best
    }

    fn nbytes(&self) -> usize {
        self.data.capacity() * 8
    }
}

/// Sparse store: M and the (type, count) pairs seen, sorted by type, per group.
#[derive(Clone)]
pub struct SparseCounts {
    k: usize,
    groups: Vec<(u64, Vec<(u32, u64)>)>,
}

impl SparseCounts {
    fn seen(&self, g: u32) -> &[(u32, u64)] {
        &self.groups[g as usize].1
    }
}

impl CountStore for SparseCounts {
    fn new(k: usize) -> Self {
        Self {
            k,
            groups: Vec::new(),
        }
    }

    fn push_group(&mut self) -> u32 {
        self.groups.push((0, Vec::new()));
        (self.groups.len() - 1) as u32
    }

    fn len(&self) -> usize {
        self.groups.len()
    }

    fn assign(&mut self, g: u32, src: Option<u32>) {
        let mut entry = std::mem::take(&mut self.groups[g as usize]);
        entry.1.clear();
        match src {
            Some(a) => {
                let (m, seen) = &self.groups[a as usize];
                entry.0 = *m;
                entry.1.extend_from_slice(seen);
            }
            None => entry.0 = 0,
        }
        self.groups[g as usize] = entry;
    }

    fn is_step_of(&self, b: u32, a: Option<u32>, t: u32, by: u64) -> bool {
        let (mb, seen_b) = &self.groups[b as usize];
        let (ma, seen_a) = match a {
            Some(a) => (self.groups[a as usize].0, self.seen(a)),
            None => (0, &[][..]),
        };
        if *mb != ma.wrapping_add(by) {
            return false;
        }
        // merge the sorted lists: b must hold a's pairs with `by` added at type t
        let mut from_a = seen_a.iter().copied().peekable();
        let mut bumped = false;
        for &(s, c) in seen_b {
            let base = match from_a.peek() {
                Some(&(sa, ca)) if sa == s => {
                    from_a.next();
                    ca
                }
                Some(&(sa, _)) if sa < s => return false,
                _ => 0,
            };
            let expected = if s == t {
                bumped = true;
                base.wrapping_add(by)
            } else {
                base
            };
            if c != expected {
                return false;
            }
        }
        bumped && from_a.next().is_none()
    }

    fn add(&mut self, g: u32, t: u32, count: u64) -> u64 {
        let (m, seen) = &mut self.groups[g as usize];
        *m += count;
        match seen.binary_search_by_key(&t, |e| e.0) {
            Ok(i) => seen[i].1 += count,
            Err(i) => seen.insert(i, (t, count)),
        }
        *m
    }

    fn total(&self, g: u32) -> u64 {
        self.groups[g as usize].0
    }

    fn count(&self, g: u32, t: u32) -> u64 {
        let seen = self.seen(g);
        seen.binary_search_by_key(&t, |e| e.0)
            .map_or(0, |i| seen[i].1)
    }

    fn discrepancy(&self, g: u32, theta: &[f64], theta_desc: &[u32]) -> f64 {
        let (m, seen) = &self.groups[g as usize];
        let m = *m as f64;
        let mut best = 0.0f64;
        for &(t, c) in seen {
            best = best.max((c as f64 - theta[t as usize] * m).abs());
        }
        // the unseen type with the largest probability contributes theta_t * M; it is among
        // the first seen.len() + 1 types by decreasing probability
        if seen.len() < self.k {
            if let Some(&t) = theta_desc
                .iter()
                .find(|&&t| seen.binary_search_by_key(&t, |e| e.0).is_err())
            {
                best = best.max(theta[t as usize] * m);
            }
        }
        best
    }

    fn exact_stat(&self, g: u32, theta: &[f64], l: f64) -> f64 {
        let (m, seen) = &self.groups[g as usize];
        let m_over_l = *m as f64 / l;
        let mut best = 0.0f64;
        let mut seen = seen.iter().peekable();
        for (t, &p) in theta.iter().enumerate() {
            let c = match seen.peek() {
                Some(&&(s, c)) if s as usize == t => {
                    seen.next();
                    c
                }
                _ => 0,
            };
            best = best.max((c as f64 / l - p * m_over_l).abs());
        }
        best
    }

    fn nbytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<(u64, Vec<(u32, u64)>)>()
            + self
                .groups
                .iter()
                .map(|g| g.1.capacity() * std::mem::size_of::<(u32, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise<C: CountStore>() {
        let k = 5;
        let theta: [f64; 5] = [0.1, 0.4, 0.2, 0.2, 0.1];
        let mut desc: Vec<u32> = (0..k as u32).collect();
        desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
        let mut store = C::new(k);
        assert_eq!(store.push_group(), 0);
        assert_eq!(store.push_group(), 1);
        assert_eq!(store.len(), 2);
        let obs = [(0u32, 1u32), (0, 1), (1, 3), (0, 4), (1, 3), (0, 1)];
        for &(g, t) in &obs {
            store.add(g, t, 1);
        }
        assert_eq!(store.total(0), 4);
        assert_eq!(store.count(0, 1), 3);
        assert_eq!(store.count(1, 0), 0);
        // group 0: c = [0, 3, 0, 0, 1], M = 4
        let dense: Vec<f64> = (0..k)
            .map(|t| (store.count(0, t as u32) as f64 - theta[t] * 4.0).abs())
            .collect();
        let expected = dense.iter().cloned().fold(0.0, f64::max);
        assert_eq!(store.discrepancy(0, &theta, &desc), expected);
        let l = 9.0;
        let exact = (0..k)
            .map(|t| (store.count(0, t as u32) as f64 / l - theta[t] * (4.0 / l)).abs())
            .fold(0.0, f64::max);
        assert_eq!(store.exact_stat(0, &theta, l), exact);

        // group 2 := group 0, then compare against steps of group 0
        assert_eq!(store.push_group(), 2);
        store.assign(2, Some(0));
        assert!((0..k).all(|t| store.count(2, t as u32) == store.count(0, t as u32)));
        assert!(!store.is_step_of(2, Some(0), 1, 1));
        store.add(2, 2, 3);
        assert!(store.is_step_of(2, Some(0), 2, 3));
        assert!(!store.is_step_of(2, Some(0), 2, 2));
        assert!(!store.is_step_of(2, Some(0), 1, 3));
        assert!(!store.is_step_of(2, Some(1), 2, 3));
        store.add(2, 1, 1);
        assert!(!store.is_step_of(2, Some(0), 2, 3));
        store.assign(2, None);
        assert_eq!(store.total(2), 0);
        store.add(2, 4, 2);
        assert!(store.is_step_of(2, None, 4, 2));
        assert!(!store.is_step_of(2, None, 3, 2));
        assert!(!store.is_step_of(2, None, 4, 1));
        // a group with a type the base lacks is not a step at another type
        store.assign(2, Some(1));
        store.add(2, 0, 1);
        store.add(2, 3, 1);
        assert!(!store.is_step_of(2, Some(1), 0, 2));
        assert!(!store.is_step_of(2, Some(1), 0, 1));
    }

    #[test]
    fn dense_store() {
        exercise::<DenseCounts>();
    }

    #[test]
    fn sparse_store() {
        exercise::<SparseCounts>();
    }
}
