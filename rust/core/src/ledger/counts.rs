//! Per-group counts of one player: M(g) = days whose profile without the player is g, and
//! c_t(g) = days with that profile and the player's bid t (so c_t = J(g, t) and sum_t c_t = M).
//!
//! Two stores behind one trait: a dense arena of (K + 1) 64-bit counts per group for small K,
//! and a sparse list of the types seen per group for large K, where dense blocks would cost
//! 2 KiB per group at K = 256.

/// Operations the ledger needs on the counts of one player's groups.
pub trait CountStore: Clone + Send + Sync {
    /// An empty store for `k` types.
    fn new(k: usize) -> Self;
    /// Appends a new, empty group and returns its id.
    fn push_group(&mut self) -> u32;
    /// Number of groups.
    fn len(&self) -> usize;
    /// Adds `count` observations of type `t` to group `g`; returns the new M(g).
    fn add(&mut self, g: u32, t: u16, count: u64) -> u64;
    /// M(g).
    fn total(&self, g: u32) -> u64;
    /// c_t(g).
    fn count(&self, g: u32, t: u16) -> u64;
    /// v(g) = max_t |c_t - theta_t M| (a scaled discrepancy; fast path only).
    fn discrepancy(&self, g: u32, theta: &[f64], theta_desc: &[u16]) -> f64;
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

    #[inline(always)]
    fn add(&mut self, g: u32, t: u16, count: u64) -> u64 {
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
    fn count(&self, g: u32, t: u16) -> u64 {
        self.data[g as usize * self.stride + 1 + t as usize]
    }

    #[inline(always)]
    fn discrepancy(&self, g: u32, theta: &[f64], _theta_desc: &[u16]) -> f64 {
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

/// Sparse store: M and the (type, count) pairs seen, per group.
#[derive(Clone)]
pub struct SparseCounts {
    k: usize,
    groups: Vec<(u64, Vec<(u16, u64)>)>,
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

    fn add(&mut self, g: u32, t: u16, count: u64) -> u64 {
        let (m, seen) = &mut self.groups[g as usize];
        *m += count;
        match seen.iter_mut().find(|e| e.0 == t) {
            Some(e) => e.1 += count,
            None => seen.push((t, count)),
        }
        *m
    }

    fn total(&self, g: u32) -> u64 {
        self.groups[g as usize].0
    }

    fn count(&self, g: u32, t: u16) -> u64 {
        self.groups[g as usize]
            .1
            .iter()
            .find(|e| e.0 == t)
            .map_or(0, |e| e.1)
    }

    fn discrepancy(&self, g: u32, theta: &[f64], theta_desc: &[u16]) -> f64 {
        let (m, seen) = &self.groups[g as usize];
        let m = *m as f64;
        let mut mark = [0u64; 4];
        let mut best = 0.0f64;
        for &(t, c) in seen {
            mark[t as usize / 64] |= 1 << (t % 64);
            best = best.max((c as f64 - theta[t as usize] * m).abs());
        }
        // the unseen type with the largest probability contributes theta_t * M
        if seen.len() < self.k {
            if let Some(&t) = theta_desc
                .iter()
                .find(|&&t| mark[t as usize / 64] & (1 << (t % 64)) == 0)
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
        for (t, &p) in theta.iter().enumerate() {
            let c = seen.iter().find(|e| e.0 as usize == t).map_or(0, |e| e.1);
            best = best.max((c as f64 / l - p * m_over_l).abs());
        }
        best
    }

    fn nbytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<(u64, Vec<(u16, u64)>)>()
            + self
                .groups
                .iter()
                .map(|g| g.1.capacity() * std::mem::size_of::<(u16, u64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise<C: CountStore>() {
        let k = 5;
        let theta: [f64; 5] = [0.1, 0.4, 0.2, 0.2, 0.1];
        let mut desc: Vec<u16> = (0..k as u16).collect();
        desc.sort_by(|a, b| theta[*b as usize].total_cmp(&theta[*a as usize]));
        let mut store = C::new(k);
        assert_eq!(store.push_group(), 0);
        assert_eq!(store.push_group(), 1);
        assert_eq!(store.len(), 2);
        let obs = [(0u32, 1u16), (0, 1), (1, 3), (0, 4), (1, 3), (0, 1)];
        for &(g, t) in &obs {
            store.add(g, t, 1);
        }
        assert_eq!(store.total(0), 4);
        assert_eq!(store.count(0, 1), 3);
        assert_eq!(store.count(1, 0), 0);
        // group 0: c = [0, 3, 0, 0, 1], M = 4
        let dense: Vec<f64> = (0..k)
            .map(|t| (store.count(0, t as u16) as f64 - theta[t] * 4.0).abs())
            .collect();
        let expected = dense.iter().cloned().fold(0.0, f64::max);
        assert_eq!(store.discrepancy(0, &theta, &desc), expected);
        let l = 9.0;
        let exact = (0..k)
            .map(|t| (store.count(0, t as u16) as f64 / l - theta[t] * (4.0 / l)).abs())
            .fold(0.0, f64::max);
        assert_eq!(store.exact_stat(0, &theta, l), exact);
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
