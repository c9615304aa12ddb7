//! The ledger against a dense reference written straight from eqs. (6), (8), (11) and (13).

use super::*;
use crate::window::window;

/// SplitMix64: a tiny deterministic generator for test streams.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn draw(&mut self, pmf: &[f64]) -> i64 {
        let u = self.uniform();
        let mut acc = 0.0;
        for (t, &p) in pmf.iter().enumerate() {
            acc += p;
            if u < acc {
                return t as i64;
            }
        }
        pmf.len() as i64 - 1
    }
    fn pmf(&mut self, k: usize) -> Vec<f64> {
        let raw: Vec<f64> = (0..k).map(|_| self.uniform() + 0.05).collect();
        let s: f64 = raw.iter().sum();
        let mut p: Vec<f64> = raw.iter().map(|x| x / s).collect();
        let head: f64 = p[..k - 1].iter().sum();
        p[k - 1] = 1.0 - head;
        p
    }
}

/// Dense reference over Delta^n: returns (flags, marginal max, joint max) per day and player.
struct Dense {
    n: usize,
    k: usize,
    gamma: f64,
    theta: Vec<f64>,
    joint: Vec<u64>,
    marginal: Vec<u64>,
    day: u64,
}

impl Dense {
    fn new(theta: &[f64], n: usize, k: usize, gamma: f64) -> Self {
        Self {
            n,
            k,
            gamma,
            theta: theta.to_vec(),
            joint: vec![0; k.pow(n as u32)],
            marginal: vec![0; n * k],
            day: 0,
        }
    }

    fn index(&self, d: &[usize]) -> usize {
        d.iter().rev().fold(0, |acc, &t| acc * self.k + t)
    }

    fn record(&mut self, bids: &[i64]) -> Vec<(bool, f64, f64)> {
        let (n, k) = (self.n, self.k);
        let d: Vec<usize> = bids.iter().map(|&b| b as usize).collect();
        let idx = self.index(&d);
        self.joint[idx] += 1;
        for (i, &t) in d.iter().enumerate() {
            self.marginal[i * k + t] += 1;
        }
        self.day += 1;
        let lf = self.day as f64;
        let r = window(self.day, self.gamma);
        let mut out = Vec::new();
        for i in 0..n {
            let theta = &self.theta[i * k..(i + 1) * k];
            let fmax = (0..k)
                .map(|t| (self.marginal[i * k + t] as f64 / lf - theta[t]).abs())
                .fold(0.0, f64::max);
            let mut hmax = 0.0f64;
            let mut profile = vec![0usize; n];
            for cell in 0..self.joint.len() {
                let mut rest = cell;
                for slot in profile.iter_mut() {
                    *slot = rest % k;
                    rest /= k;
                }
                let mut m = 0u64;
                let mut q = profile.clone();
                for t in 0..k {
                    q[i] = t;
                    m += self.joint[self.index(&q)];
                }
                let h = self.joint[cell] as f64 / lf - theta[profile[i]] * (m as f64 / lf);
                hmax = hmax.max(h.abs());
            }
            out.push((fmax >= r || hmax >= r, fmax, hmax));
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Stream {
    Truthful,
    OffSupertype,
    Correlated,
    /// Player 1 copies player 0; the others bid truthfully.
    Planted,
}

fn bid_stream(
    rng: &mut Rng,
    theta: &[f64],
    n: usize,
    k: usize,
    days: usize,
    kind: Stream,
) -> Vec<i64> {
    let mut bids = Vec::with_capacity(days * n);
    for _ in 0..days {
        let first = rng.draw(&theta[..k]);
        for i in 0..n {
            let row = &theta[i * k..(i + 1) * k];
            let b = match kind {
                Stream::Truthful => rng.draw(row),
                Stream::OffSupertype if i == 0 => (k - 1) as i64,
                Stream::OffSupertype => rng.draw(row),
                // players copy player 0 half of the time: marginals may match, joints do not
                Stream::Correlated if i > 0 && rng.uniform() < 0.5 => first,
                Stream::Correlated if i == 0 => first,
                Stream::Correlated => rng.draw(row),
                Stream::Planted if i < 2 => first,
                Stream::Planted => rng.draw(row),
            };
            bids.push(b);
        }
    }
    bids
}

/// How a test records its stream.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Flags only throughout (groups tracked only when they can fire).
    Flags,
    /// Exact maxima throughout (every group tracked).
    Detail,
    /// Flags only for the first half, then exact maxima.
    Switch,
    /// Flags only, saved and restored after every chunk.
    Restore,
}

/// Per player: groups kept and class ids ever allocated (complete mode).
fn class_usage(ledger: &BidLedger) -> Vec<(usize, usize)> {
    dispatch!(&ledger.inner, l => l
        .players
        .iter()
        .map(|p| (p.groups.len(), p.classes.counts().len()))
        .collect())
}

fn check_against_dense(
    n: usize,
    k: usize,
    days: usize,
    kind: Stream,
    seed: u64,
    chunk: usize,
    mode: Mode,
) -> BidLedger {
    let mut rng = Rng(seed);
    let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
    let bids = bid_stream(&mut rng, &theta, n, k, days, kind);
    let mut dense = Dense::new(&theta, n, k, 0.5);
    let mut fast = BidLedger::new(&theta, n, k, 0.5).unwrap();
    let mut flagged = 0;
    let mut last = Vec::new();
    for rows in bids.chunks(chunk * n) {
        let len = rows.len() / n;
        let mut flags = vec![false; rows.len()];
        let mut marg = vec![0.0; rows.len()];
        let mut joint = vec![0.0; rows.len()];
        let detail = match mode {
            Mode::Detail => true,
            Mode::Switch => dense.day as usize >= days / 2,
            Mode::Flags | Mode::Restore => false,
        };
        let out = RecordOutput {
            flags: &mut flags,
            detail: detail.then_some((&mut marg[..], &mut joint[..])),
        };
        fast.record(rows, len, out).unwrap();
        if matches!(mode, Mode::Restore) {
            fast = BidLedger::from_bytes(&fast.to_bytes()).unwrap();
        }
        for r in 0..len {
            let expected = dense.record(&rows[r * n..(r + 1) * n]);
            for i in 0..n {
                let (flag, fmax, hmax) = expected[i];
                assert_eq!(
                    flags[r * n + i],
                    flag,
                    "{mode:?}: flag day {} player {i}",
                    dense.day
                );
                flagged += flag as usize;
                if detail {
                    assert_eq!(
                        marg[r * n + i],
                        fmax,
                        "marginal day {} player {i}",
                        dense.day
                    );
                    let got = joint[r * n + i];
                    assert!(
                        (got - hmax).abs() <= 1e-15,
                        "joint day {} player {i}: {got} vs {hmax}",
                        dense.day
                    );
                }
            }
            last = expected;
        }
    }
    // the current maxima (which makes every group tracked) agree with the last dense day
    let maxima = fast.joint_max().unwrap();
    for i in 0..n {
        assert!(
            (maxima[i] - last[i].2).abs() <= 1e-15,
            "{mode:?}: final joint max of player {i}"
        );
    }
    // deviating streams must fire, or the comparison would only cover the quiet branch
    if !matches!(kind, Stream::Truthful) {
        assert!(flagged > 0, "the stream never fired: a weak test case");
    }
    // every group is kept now; live classes never outnumber groups, so neither do class ids
    for (i, (groups, ids)) in class_usage(&fast).into_iter().enumerate() {
        assert_eq!(groups, fast.groups_seen()[i]);
        assert!(
            ids <= groups,
            "player {i}: {ids} class ids for {groups} groups"
        );
    }
    fast
}

const MODES: [Mode; 4] = [Mode::Flags, Mode::Detail, Mode::Switch, Mode::Restore];

#[test]
fn truthful_streams_match_dense() {
    for (seed, &(n, k)) in [(2, 3), (3, 2), (1, 4), (4, 3), (5, 2), (3, 4)]
        .iter()
        .enumerate()
    {
        for mode in MODES {
            check_against_dense(n, k, 600, Stream::Truthful, seed as u64, 37, mode);
        }
    }
}

#[test]
fn deviating_streams_match_dense() {
    for mode in MODES {
        check_against_dense(3, 3, 500, Stream::OffSupertype, 11, 50, mode);
        check_against_dense(3, 3, 500, Stream::Correlated, 12, 1, mode);
        check_against_dense(4, 2, 500, Stream::Correlated, 13, 500, mode);
        check_against_dense(6, 2, 700, Stream::Correlated, 14, 64, mode);
        check_against_dense(5, 3, 400, Stream::OffSupertype, 15, 100, mode);
    }
}

#[test]
fn sparse_store_matches_dense() {
    // K > 32 uses the sparse count store
    for mode in MODES {
        check_against_dense(2, 40, 300, Stream::Truthful, 21, 30, mode);
        check_against_dense(2, 40, 300, Stream::Correlated, 22, 300, mode);
    }
}

#[test]
fn long_streams_match_dense() {
    // n = 2: a few huge groups whose count vectors change every day (classes rewritten in
    // place); n = 3, 4: many groups moving between shared and private classes
    for mode in [Mode::Detail, Mode::Switch] {
        check_against_dense(2, 3, 10_000, Stream::Correlated, 31, 997, mode);
        check_against_dense(2, 3, 10_000, Stream::Truthful, 32, 4096, mode);
        check_against_dense(3, 3, 3_000, Stream::OffSupertype, 33, 333, mode);
        check_against_dense(4, 2, 3_000, Stream::Correlated, 34, 1000, mode);
        check_against_dense(4, 3, 1_000, Stream::Truthful, 35, 100, mode);
    }
}

#[test]
fn sparse_store_long_streams_match_dense() {
    // K > 32 keeps count vectors as sorted sparse lists
    check_against_dense(2, 40, 400, Stream::Correlated, 41, 80, Mode::Detail);
    check_against_dense(2, 40, 400, Stream::Correlated, 42, 100, Mode::Switch);
    check_against_dense(2, 33, 250, Stream::OffSupertype, 43, 250, Mode::Detail);
}

/// max_t |N_t / l - theta_t| as eq. (6) reads: every type divided.
fn marginal_plain(marginal: &[u64], theta: &[f64], lf: f64) -> f64 {
    marginal
        .iter()
        .zip(theta)
        .map(|(&c, &p)| (c as f64 / lf - p).abs())
        .fold(0.0, f64::max)
}

#[test]
fn marginal_maximum_divides_only_candidates_and_equals_the_definition() {
    let mut rng = Rng(77);
    let mut differ = 0;
    for case in 0..200_000u64 {
        let k = 2 + (case % 5) as usize;
        let theta = if case % 3 == 0 {
            vec![1.0 / k as f64; k]
        } else {
            rng.pmf(k)
        };
        let l = 1 + rng.next() % (1u64 << (4 + case % 45));
        let lf = l as f64;
        // counts near theta_t l with deviations of equal size on several types: the scaled
        // values tie up to rounding, and the largest exact value may sit on any of them
        let d = rng.next() % 4;
        let marginal: Vec<u64> = theta
            .iter()
            .map(|&p| {
                let c = (p * lf).round() as u64;
                if rng.next() % 2 == 0 {
                    c + d
                } else {
                    c.saturating_sub(d)
                }
            })
            .collect();
        let plain = marginal_plain(&marginal, &theta, lf);
        assert_eq!(
            marginal_exact(&marginal, &theta, lf).to_bits(),
            plain.to_bits(),
            "{marginal:?} {theta:?} l = {l}"
        );
        // cases where the largest scaled value is not the largest exact one
        let by_scaled = (0..k)
            .max_by(|&a, &b| {
                let s = |t: usize| (marginal[t] as f64 - theta[t] * lf).abs();
                s(a).total_cmp(&s(b))
            })
            .unwrap();
        differ += ((marginal[by_scaled] as f64 / lf - theta[by_scaled]).abs() != plain) as usize;
    }
    assert!(differ > 100, "too few cases decided by rounding: {differ}");
}

#[test]
fn batch_group_estimates_are_close() {
    // the complete mode sizes its group tables from these estimates (a hint: any error only
    // costs memory or a later growth), so they must be near the true distinct counts
    let mut rng = Rng(5);
    for (n, k, days) in [
        (10, 5, 40_000),
        (4, 3, 50_000),
        (6, 7, 20_000),
        (3, 2, 1000),
    ] {
        let ks = vec![k; n];
        let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
        let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Truthful);
        let digits: Vec<u8> = bids.iter().map(|&b| b as u8).collect();
        let layout = KeyLayout::new(&ks).unwrap();
        let ledger = LedgerImpl::<1, DenseCounts>::new(&theta, &ks, 0.5, layout, false);
        let estimates = ledger.batch_groups(&digits, days);
        for (i, estimate) in estimates.into_iter().enumerate() {
            let exact: std::collections::HashSet<Vec<i64>> = bids
                .chunks(n)
                .map(|row| {
                    let mut g = row.to_vec();
                    g[i] = -1;
                    g
                })
                .collect();
            let exact = exact.len() as f64;
            assert!(
                (estimate - exact).abs() <= 0.06 * exact,
                "n = {n}, K = {k}, player {i}: {estimate} vs {exact}"
            );
        }
    }
}

#[test]
fn huge_groups_do_not_leak_classes() {
    // n = 2: every day moves each player's group to a count vector never seen before
    let (n, k, days) = (2, 3, 200_000);
    let mut rng = Rng(51);
    let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
    let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Correlated);
    let mut ledger = BidLedger::new(&theta, n, k, 0.5).unwrap();
    let mut bytes = Vec::new();
    for rows in bids.chunks(20_000 * n) {
        let len = rows.len() / n;
        let mut flags = vec![false; rows.len()];
        let (mut m, mut j) = (vec![0.0; rows.len()], vec![0.0; rows.len()]);
        ledger
            .record(
                rows,
                len,
                RecordOutput {
                    flags: &mut flags,
                    detail: Some((&mut m, &mut j)),
                },
            )
            .unwrap();
        for (groups, ids) in class_usage(&ledger) {
            assert_eq!(groups, k);
            assert!(ids <= k);
        }
        bytes.push(ledger.nbytes());
    }
    assert!(
        bytes.iter().all(|&b| b == bytes[0]),
        "memory grows: {bytes:?}"
    );
}

#[test]
fn packed_and_wide_group_tables_agree() {
    // 6 players over 3 types: 12-bit group keys, packed with their class in one word
    let (n, k, days) = (6, 3, 6_000);
    let mut rng = Rng(61);
    let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
    let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Correlated);
    let layout = KeyLayout::new(&vec![k; n]).unwrap();
    let mut packed = BidLedger::new(&theta, n, k, 0.5).unwrap();
    let mut wide = BidLedger::build_with(&theta, &vec![k; n], 0.5, layout, false);
    let run = |ledger: &mut BidLedger, rows: &[i64], detail: bool| {
        let len = rows.len() / n;
        let mut flags = vec![false; rows.len()];
        let (mut m, mut j) = (vec![0.0; rows.len()], vec![0.0; rows.len()]);
        let out = RecordOutput {
            flags: &mut flags,
            detail: detail.then_some((&mut m[..], &mut j[..])),
        };
        ledger.record(rows, len, out).unwrap();
        (flags, m, j)
    };
    for (c, rows) in bids.chunks(500 * n).enumerate() {
        let detail = c >= 3;
        let a = run(&mut packed, rows, detail);
        let b = run(&mut wide, rows, detail);
        assert_eq!(a, b, "chunk {c}");
    }
    assert!(
        dispatch!(&packed.inner, l => l.players[0].groups.nbytes())
            < dispatch!(&wide.inner, l => l.players[0].groups.nbytes())
    );
    assert_eq!(packed.groups_seen(), wide.groups_seen());
    assert_eq!(packed.joint_max().unwrap(), wide.joint_max().unwrap());
    for i in 0..n {
        assert_eq!(
            packed.worst_profiles(i, 20).unwrap(),
            wide.worst_profiles(i, 20).unwrap()
        );
    }
    assert_eq!(packed.to_bytes(), wide.to_bytes());
}

#[test]
fn deviations_keep_firing_and_truth_stops() {
    let (n, k) = (3, 3);
    let theta = vec![0.2, 0.5, 0.3, 0.2, 0.5, 0.3, 0.2, 0.5, 0.3];
    for (kind, expect_late) in [
        (Stream::Truthful, false),
        (Stream::OffSupertype, true),
        (Stream::Correlated, true),
    ] {
        let mut rng = Rng(5);
        let days = 200_000;
        let bids = bid_stream(&mut rng, &theta, n, k, days, kind);
        let mut ledger = BidLedger::new(&theta, n, k, 0.5).unwrap();
        let mut flags = vec![false; days * n];
        ledger
            .record(
                &bids,
                days,
                RecordOutput {
                    flags: &mut flags,
                    detail: None,
                },
            )
            .unwrap();
        let late = flags[(days / 2) * n..].iter().any(|&f| f);
        assert_eq!(late, expect_late);
    }
}

#[test]
fn chunked_recording_equals_one_shot_and_restores_exactly() {
    let (n, k, days) = (6, 3, 4000);
    let mut rng = Rng(77);
    let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
    let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Correlated);
    let mut one = BidLedger::new(&theta, n, k, 0.7).unwrap();
    let mut flags_one = vec![false; days * n];
    let (mut m1, mut j1) = (vec![0.0; days * n], vec![0.0; days * n]);
    one.record(
        &bids,
        days,
        RecordOutput {
            flags: &mut flags_one,
            detail: Some((&mut m1, &mut j1)),
        },
    )
    .unwrap();

    let mut chunked = BidLedger::new(&theta, n, k, 0.7).unwrap();
    let half = days / 2;
    let mut flags_a = vec![false; half * n];
    chunked
        .record(
            &bids[..half * n],
            half,
            RecordOutput {
                flags: &mut flags_a,
                detail: None,
            },
        )
        .unwrap();
    let restored_bytes = chunked.to_bytes();
    let mut restored = BidLedger::from_bytes(&restored_bytes).unwrap();
    assert_eq!(restored.to_bytes(), restored_bytes);
    for ledger in [&mut chunked, &mut restored] {
        let mut flags_b = vec![false; (days - half) * n];
        let (mut m2, mut j2) = (vec![0.0; (days - half) * n], vec![0.0; (days - half) * n]);
        ledger
            .record(
                &bids[half * n..],
                days - half,
                RecordOutput {
                    flags: &mut flags_b,
                    detail: Some((&mut m2, &mut j2)),
                },
            )
            .unwrap();
        assert_eq!(&flags_one[..half * n], &flags_a[..]);
        assert_eq!(&flags_one[half * n..], &flags_b[..]);
        assert_eq!(&m1[half * n..], &m2[..]);
        assert_eq!(&j1[half * n..], &j2[..]);
        assert_eq!(ledger.to_bytes(), one.to_bytes());
    }
}

#[test]
fn wide_keys_work() {
    // 50 players with K = 4 need two words; 64 players with K = 256 need eight (sparse store)
    for &(n, k) in &[(50usize, 4usize), (64, 256), (20, 5), (50, 8)] {
        let mut rng = Rng(n as u64);
        let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
        let days = 3000;
        let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Truthful);
        let mut ledger = BidLedger::new(&theta, n, k, 0.5).unwrap();
        let mut flags = vec![false; days * n];
        let (mut m, mut j) = (vec![0.0; days * n], vec![0.0; days * n]);
        ledger
            .record(
                &bids,
                days,
                RecordOutput {
                    flags: &mut flags,
                    detail: Some((&mut m, &mut j)),
                },
            )
            .unwrap();
        let counts = ledger.marginal_counts();
        assert_eq!(counts.iter().sum::<u64>(), (days * n) as u64);
        let (profiles, jcounts) = ledger.profile_counts();
        assert_eq!(jcounts.iter().sum::<u64>(), days as u64);
        assert_eq!(profiles.len(), jcounts.len() * n);
        // the last day's joint maximum equals the maximum over the profiles seen and unseen
        let last = &bids[(days - 1) * n..];
        let h = ledger
            .joint_at(&last.iter().map(|&b| b as u32).collect::<Vec<_>>())
            .unwrap();
        for i in 0..n {
            assert!(h[i].abs() <= j[(days - 1) * n + i] + 1e-15);
        }
        let bytes = ledger.to_bytes();
        let restored = BidLedger::from_bytes(&bytes).unwrap();
        assert_eq!(
            restored.to_bytes(),
            bytes,
            "canonical state for n={n}, K={k}"
        );
        assert_eq!(restored.marginal_counts(), counts);
    }
}

#[test]
fn bad_input_is_rejected_without_change() {
    let theta = vec![0.5, 0.5, 0.25, 0.75];
    assert!(BidLedger::new(&[0.5, 0.6, 0.5, 0.5], 2, 2, 0.5).is_err());
    assert!(BidLedger::new(&[0.5, f64::NAN, 0.5, 0.5], 2, 2, 0.5).is_err());
    assert!(BidLedger::new(&[1.5, -0.5, 0.5, 0.5], 2, 2, 0.5).is_err());
    assert!(BidLedger::new(&theta, 2, 2, 0.0).is_err());
    assert!(BidLedger::new(&theta, 2, 3, 0.5).is_err());
    let mut ledger = BidLedger::new(&theta, 2, 2, 0.5).unwrap();
    let mut flags = vec![false; 4];
    ledger
        .record(
            &[0i64, 1, 1, 1],
            2,
            RecordOutput {
                flags: &mut flags,
                detail: None,
            },
        )
        .unwrap();
    let before = ledger.to_bytes();
    let err = ledger
        .record(
            &[0i64, 1, 1, 2],
            2,
            RecordOutput {
                flags: &mut flags,
                detail: None,
            },
        )
        .unwrap_err();
    assert_eq!(
        err,
        CoreError::BidOutOfRange {
            day: 4,
            player: 1,
            bid: 2,
            types: 2
        }
    );
    assert!(err.to_string().contains("player 1 on day 4"));
    assert!(ledger
        .record(
            &[0i64, -1],
            1,
            RecordOutput {
                flags: &mut flags[..2],
                detail: None
            }
        )
        .is_err());
    assert!(ledger
        .record(
            &[0i64, 1, 1],
            2,
            RecordOutput {
                flags: &mut flags,
                detail: None
            }
        )
        .is_err());
    assert_eq!(ledger.to_bytes(), before);
}

#[test]
fn damaged_states_are_errors() {
    let theta = vec![0.2, 0.8, 0.6, 0.4];
    let mut ledger = BidLedger::new(&theta, 2, 2, 0.5).unwrap();
    let mut flags = vec![false; 20];
    ledger
        .record(
            &[
                0i64, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1,
            ],
            10,
            RecordOutput {
                flags: &mut flags,
                detail: None,
            },
        )
        .unwrap();
    let bytes = ledger.to_bytes();
    assert!(BidLedger::from_bytes(&bytes).is_ok());
    for cut in [0, 5, 12, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            BidLedger::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    for pos in [9, 20, 40, bytes.len() / 2, bytes.len() - 6, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        assert!(BidLedger::from_bytes(&bad).is_err(), "flip at {pos}");
    }
    let mut future = bytes.clone();
    future[8] = 99;
    let err = BidLedger::from_bytes(&future).err().unwrap().to_string();
    assert!(err.contains("version 99"), "{err}");
}

#[test]
fn worst_profiles_are_the_largest_discrepancies() {
    let (n, k, days) = (3, 3, 400);
    let mut rng = Rng(3);
    let theta: Vec<f64> = (0..n).flat_map(|_| rng.pmf(k)).collect();
    let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Correlated);
    let mut ledger = BidLedger::new(&theta, n, k, 0.5).unwrap();
    let mut flags = vec![false; days * n];
    ledger
        .record(
            &bids,
            days,
            RecordOutput {
                flags: &mut flags,
                detail: None,
            },
        )
        .unwrap();
    let maxima = ledger.joint_max().unwrap();
    for i in 0..n {
        let worst = ledger.worst_profiles(i, 3).unwrap();
        assert_eq!(worst[0].value.abs(), maxima[i]);
        let check = ledger.joint_at(&worst[0].profile).unwrap();
        assert_eq!(check[i], worst[0].value);
        assert!(worst
            .windows(2)
            .all(|w| w[0].value.abs() >= w[1].value.abs()));
    }
}

#[test]
fn wide_layout_equals_packed_layout_on_ragged_types() {
    let ks = [1usize, 3, 2, 5, 1, 4];
    let mut rng = Rng(42);
    let mut theta = Vec::new();
    for &k in &ks {
        theta.extend(rng.pmf(k));
    }
    let rows: Vec<Vec<f64>> = split_rows(&theta, &ks).map(|r| r.to_vec()).collect();
    let days = 3000;
    // player 3 copies player 1 (mod its K) half of the time: groups repeat, joints fire
    let mut bids = Vec::with_capacity(days * ks.len());
    for _ in 0..days {
        let mut row: Vec<i64> = rows.iter().map(|p| rng.draw(p)).collect();
        if rng.uniform() < 0.5 {
            row[3] = row[1] % 5;
        }
        bids.extend(row);
    }
    let mut packed = BidLedger::with_types(&theta, &ks, 0.5).unwrap();
    let mut wide = BidLedger::with_types_wide(&theta, &ks, 0.5).unwrap();
    assert!(!packed.is_wide() && wide.is_wide());
    let cells = days * ks.len();
    let mut outputs = Vec::new();
    for ledger in [&mut packed, &mut wide] {
        let (mut f1, mut f2) = (vec![false; cells / 2], vec![false; cells / 2]);
        let (mut m, mut j) = (vec![0.0; cells / 2], vec![0.0; cells / 2]);
        let half = days / 2;
        ledger
            .record(
                &bids[..cells / 2],
                half,
                RecordOutput {
                    flags: &mut f1,
                    detail: None,
                },
            )
            .unwrap();
        ledger
            .record(
                &bids[cells / 2..],
                half,
                RecordOutput {
                    flags: &mut f2,
                    detail: Some((&mut m, &mut j)),
                },
            )
            .unwrap();
        outputs.push((f1, f2, m, j, ledger.to_bytes(), ledger.groups_seen()));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(
        outputs[0].1.iter().any(|&f| f),
        "the copied player must be flagged"
    );
    assert_eq!(packed.joint_max().unwrap(), wide.joint_max().unwrap());
    for player in 0..ks.len() {
        assert_eq!(
            packed.worst_profiles(player, 4).unwrap(),
            wide.worst_profiles(player, 4).unwrap()
        );
    }
    let profile: Vec<u32> = vec![0, 2, 1, 2, 0, 3];
    assert_eq!(
        packed.joint_at(&profile).unwrap(),
        wide.joint_at(&profile).unwrap()
    );
    // a bid outside its own player's range is refused, naming it
    let mut bad = bids[..ks.len()].to_vec();
    bad[2] = 2;
    let err = packed
        .record(
            &bad,
            1,
            RecordOutput {
                flags: &mut [false; 6],
                detail: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("player 2"), "{err}");
}

/// Records `rows` (flags only) in `fast` and checks every flag against `dense`; returns the
/// number of flags raised.
fn flags_match_dense(fast: &mut BidLedger, dense: &mut Dense, rows: &[i64], n: usize) -> usize {
    let len = rows.len() / n;
    let mut flags = vec![false; rows.len()];
    let out = RecordOutput {
        flags: &mut flags,
        detail: None,
    };
    fast.record(rows, len, out).unwrap();
    let mut fired = 0;
    for r in 0..len {
        let expected = dense.record(&rows[r * n..(r + 1) * n]);
        for i in 0..n {
            assert_eq!(
                flags[r * n + i],
                expected[i].0,
                "day {} player {i}",
                dense.day
            );
            fired += expected[i].0 as usize;
        }
    }
    fired
}

/// Groups tracked by each player in the light mode (packed layouts).
fn tracked_counts(ledger: &BidLedger) -> Vec<usize> {
    match &ledger.inner {
        Inner::D1(l) => l.players.iter().map(|p| p.tracked.len()).collect(),
        Inner::WD(l) => l.players.iter().map(|p| p.tracked.len()).collect(),
        _ => panic!("a one-word or wide dense ledger expected"),
    }
}

#[test]
fn purged_groups_come_back_exactly() {
    for wide in [false, true] {
        purge_case(wide);
    }
}

fn purge_case(wide: bool) {
    // n = 4, K = 3: 27 groups per player with M ~ l / 27. Early on every group is tracked,
    // then l r(l) outgrows them and they are purged, and from about l = 10^4 on they reach it
    // again and are read back from J: flags must match the dense definition throughout.
    let (n, k, days) = (4, 3, 24_000);
    let mut rng = Rng(77);
    let theta = vec![1.0 / k as f64; n * k];
    let bids = bid_stream(&mut rng, &theta, n, k, days, Stream::Truthful);
    let mut dense = Dense::new(&theta, n, k, 0.5);
    let mut fast = if wide {
        BidLedger::with_types_wide(&theta, &[k; 4], 0.5).unwrap()
    } else {
        BidLedger::new(&theta, n, k, 0.5).unwrap()
    };
    let mut history = Vec::new();
    let mut start = 0;
    while start < days {
        // day by day at first, to see the early groups tracked and purged
        let len = if start < 300 { 1 } else { 300 }.min(days - start);
        let rows = &bids[start * n..(start + len) * n];
        start += len;
        flags_match_dense(&mut fast, &mut dense, rows, n);
        history.push(tracked_counts(&fast)[0]);
    }
    let peak = history
        .iter()
        .position(|&c| c > 0)
        .expect("groups tracked early on");
    let low = peak
        + history[peak..]
            .iter()
            .position(|&c| c < history[peak])
            .expect("a purge");
    assert!(
        history[low..].iter().any(|&c| c > history[low]),
        "no group came back after the purge: {history:?}"
    );
}

#[test]
fn deferred_joint_counts_equal_immediate_ones() {
    // 12 players with 3 types: 531,441 profiles, so J's additions are deferred until a group
    // must be read back; forcing them immediate must change nothing, flags or counts
    let (n, k, days) = (12, 3, 40_000);
    for (seed, kind) in [
        (91, Stream::Correlated),
        (92, Stream::Truthful),
        (93, Stream::Planted),
    ] {
        let mut rng = Rng(seed);
        let theta: Vec<f64> = match kind {
            // players 2.. nearly always bid 0, so groups are few and large
            Stream::Planted => (0..n)
                .flat_map(|i| {
                    if i < 2 {
                        vec![0.4, 0.3, 0.3]
                    } else {
                        vec![0.96, 0.02, 0.02]
                    }
                })
                .collect(),
            _ => (0..n).flat_map(|_| rng.pmf(k)).collect(),
        };
        let bids = bid_stream(&mut rng, &theta, n, k, days, kind);
        let mut ledgers = [
            BidLedger::new(&theta, n, k, 0.5).unwrap(),
            BidLedger::new(&theta, n, k, 0.5).unwrap(),
        ];
        match &mut ledgers[1].inner {
            Inner::D1(l) => {
                assert!(l.defer, "a deferring ledger expected");
                l.defer = false;
            }
            _ => panic!("a one-word dense ledger expected"),
        }
        let mut flagged = 0;
        let mut start = 0;
        for len in [1usize, 7, 500, 4096, 5000, 30_396] {
            let rows = &bids[start * n..(start + len) * n];
            start += len;
            let mut flags = [vec![false; len * n], vec![false; len * n]];
            for (ledger, out) in ledgers.iter_mut().zip(flags.iter_mut()) {
                let out = RecordOutput {
                    flags: out,
                    detail: None,
                };
                ledger.record(rows, len, out).unwrap();
            }
            assert_eq!(flags[0], flags[1], "seed {seed}, days up to {start}");
            flagged += flags[0].iter().filter(|&&f| f).count();
            assert_eq!(ledgers[0].profile_counts(), ledgers[1].profile_counts());
        }
        assert_eq!(start, days);
        assert!(flagged > 0);
        assert_eq!(ledgers[0].to_bytes(), ledgers[1].to_bytes());
        assert_eq!(
            ledgers[0].joint_max().unwrap(),
            ledgers[1].joint_max().unwrap()
        );
    }
}

/// A fresh one-word ledger with the first split of blocks only, whatever its supertypes:
/// skewed ones would get blocks tight enough to leave nothing to remember.
fn first_split_ledger(theta: &[f64], n: usize, k: usize) -> BidLedger {
    let mut ledger = BidLedger::new(theta, n, k, 0.5).unwrap();
    match &mut ledger.inner {
        Inner::D1(l) => l.blocks = super::blocks::BlockCounts::first_split(&vec![k; n]),
        _ => panic!("a one-word dense ledger expected"),
    }
    ledger
}

#[test]
fn remembered_groups_are_ruled_out_exactly() {
    // Players 3 and 4 nearly always bid 0, player 2 rarely does: the groups (x, 0, 0, 0) of
    // player 0 are small but their block count (players 3, 4) is large, so they are read back
    // below the keep floor and remembered. From day 8,000 on player 2 bids 0 and player 1
    // copies player 0: those groups grow, are ruled out by their block count for a while, are
    // read back again and must fire exactly when the dense definition does.
    let (n, k, days, switch) = (5, 3, 30_000, 8_000);
    let theta: Vec<f64> = [
        [0.4, 0.3, 0.3],
        [0.4, 0.3, 0.3],
        [0.02, 0.49, 0.49],
        [0.9, 0.05, 0.05],
        [0.9, 0.05, 0.05],
    ]
    .concat();
    let mut rng = Rng(101);
    let mut bids = Vec::with_capacity(days * n);
    for day in 0..days {
        let own: Vec<i64> = (0..n)
            .map(|i| rng.draw(&theta[i * k..(i + 1) * k]))
            .collect();
        let deviating = day >= switch;
        bids.extend(own.iter().enumerate().map(|(i, &b)| match i {
            1 if deviating => own[0],
            2 if deviating => 0,
            _ => b,
        }));
    }
    let mut dense = Dense::new(&theta, n, k, 0.5);
    let mut fast = first_split_ledger(&theta, n, k);
    let (mut remembered, mut flagged) = (0, 0);
    for rows in bids.chunks(500 * n) {
        let fired = flags_match_dense(&mut fast, &mut dense, rows, n);
        if dense.day > switch as u64 + 10 {
            flagged += fired;
        }
        remembered += match &fast.inner {
            Inner::D1(l) => l.players[0].cold.len(),
            _ => panic!("a one-word dense ledger expected"),
        };
    }
    assert!(remembered > 0, "no group was remembered: a weak test case");
    assert!(flagged > 0, "the deviation never fired: a weak test case");
}

#[test]
fn remembered_groups_go_stale_when_tracked() {
    // Player 0's group (0, 0, 0, 0) (players 1 to 4 bid 0) is rare while everyone is truthful,
    // but its block count (players 3, 4) is large. For a while players 1 and 2 bid 0 exactly
    // when player 0 does (its own bids stay truthful): the group is read back, remembered
    // and counted, tracked when its M reaches the floor, and fires. Truthful again, it
    // hardly grows while the floor rises past it, and it is purged. Deviating again, it must
    // fire exactly when the dense definition says: what was remembered of it before it was
    // tracked is short by the days it was tracked, and using it would fire too late.
    let (n, k) = (5, 3);
    let phases = [
        (0usize, false),
        (6_000, true),
        (16_000, false),
        (60_000, true),
    ];
    let days = 80_000;
    let theta: Vec<f64> = [
        [0.05, 0.475, 0.475],
        [0.4, 0.3, 0.3],
        [0.002, 0.499, 0.499],
        [0.9, 0.05, 0.05],
        [0.9, 0.05, 0.05],
    ]
    .concat();
    let mut rng = Rng(7);
    let mut bids = Vec::with_capacity(days * n);
    for day in 0..days {
        let deviating = phases
            .iter()
            .rev()
            .find(|p| p.0 <= day)
            .is_some_and(|p| p.1);
        let own: Vec<i64> = (0..n)
            .map(|i| rng.draw(&theta[i * k..(i + 1) * k]))
            .collect();
        bids.extend(own.iter().enumerate().map(|(i, &b)| match i {
            1 | 2 if deviating && own[0] == 0 => 0,
            1 | 2 if deviating => b.max(1),
            _ => b,
        }));
    }
    let mut dense = Dense::new(&theta, n, k, 0.5);
    let mut fast = first_split_ledger(&theta, n, k);
    let (mut tracked, mut purged, mut joint_only) = (false, false, 0);
    let zero = [0u64; 1];
    for rows in bids.chunks(500 * n) {
        let len = rows.len() / n;
        let mut flags = vec![false; rows.len()];
        let out = RecordOutput {
            flags: &mut flags,
            detail: None,
        };
        fast.record(rows, len, out).unwrap();
        for r in 0..len {
            let expected = dense.record(&rows[r * n..(r + 1) * n]);
            for i in 0..n {
                assert_eq!(
                    flags[r * n + i],
                    expected[i].0,
                    "day {} player {i}",
                    dense.day
                );
            }
            let rl = window(dense.day, 0.5);
            if dense.day > phases[3].0 as u64 && expected[0].1 < rl && expected[0].2 >= rl {
                joint_only += 1;
            }
        }
        let Inner::D1(l) = &fast.inner else {
            unreachable!()
        };
        let now = l.players[0].tracked.count(&zero) > 0;
        purged |= tracked && !now && dense.day < phases[3].0 as u64;
        tracked |= now;
    }
    assert!(
        purged,
        "the group was never tracked then purged: a weak test case"
    );
    assert!(
        joint_only > 0,
        "player 0's joint test alone never fired late: a weak test case"
    );
}
