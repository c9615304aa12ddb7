//! Rough throughput of the ledger on IID truthful bids:
//! `cargo run --release --example throughput -- n k days [flags|detail] [uniform|dirichlet]`.
//! Bids are recorded as one-byte digits, as the Python bindings pass them.

use std::time::Instant;
use stochmech_core::{BidLedger, CompactBids, RecordOutput};

/// CPU seconds used by this thread (a fair measure on a shared machine).
fn thread_cpu() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }
    #[cfg(not(target_os = "linux"))]
    0.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(10, |s| s.parse().expect("n"));
    let k: usize = args.get(2).map_or(5, |s| s.parse().expect("k"));
    let days: usize = args.get(3).map_or(1_000_000, |s| s.parse().expect("days"));
    let detail = args.get(4).is_some_and(|s| s == "detail");
    let skewed = args.get(5).is_some_and(|s| s == "dirichlet");
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    // Dirichlet(1) rows: normalized exponential draws
    let theta: Vec<f64> = (0..n)
        .flat_map(|_| {
            let row: Vec<f64> = (0..k)
                .map(|_| if skewed { -(1.0 - next()).ln() } else { 1.0 })
                .collect();
            let total: f64 = row.iter().sum();
            row.into_iter().map(move |x| x / total)
        })
        .collect();
    let bids: Vec<i64> = (0..days)
        .flat_map(|_| (0..n).map(|i| (i, next())).collect::<Vec<_>>())
        .map(|(i, u)| {
            let row = &theta[i * k..(i + 1) * k];
            let mut acc = 0.0;
            row.iter()
                .position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(k - 1) as i64
        })
        .collect();
    let convert = thread_cpu();
    let compact = CompactBids::from_i64(&bids, &vec![k; n]);
    eprintln!("from_i64: CPU {:.3} s", thread_cpu() - convert);
    let Ok(CompactBids::U8(digits)) = compact else {
        panic!("K <= 256 expected");
    };
    let mut ledger = BidLedger::new(&theta, n, k, 0.5).expect("valid ledger");
    let mut flags = vec![false; n * days];
    let (mut m, mut j) = (vec![0.0; n * days], vec![0.0; n * days]);
    let start = Instant::now();
    let cpu0 = thread_cpu();
    let out = RecordOutput {
        flags: &mut flags,
        detail: detail.then_some((&mut m[..], &mut j[..])),
    };
    ledger.record(&digits, days, out).expect("valid bids");
    let secs = start.elapsed().as_secs_f64();
    let cpu = thread_cpu() - cpu0;
    println!(
        "n={n} K={k} days={days} detail={detail} skewed={skewed}: {:.3} s, {:.2} M days/s \
         (CPU {:.3} s: {:.2} M days/s), {:.0} MB, flagged {}",
        secs,
        days as f64 / secs / 1e6,
        cpu,
        days as f64 / cpu / 1e6,
        ledger.nbytes() as f64 / 1e6,
        flags.iter().filter(|&&f| f).count()
    );
}
