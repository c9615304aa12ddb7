//! Rough throughput of the ledger on IID truthful bids: `cargo run --release --example throughput -- n k days [detail]`.

use std::time::Instant;
use stochmech_core::{BidLedger, RecordOutput};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(10, |s| s.parse().expect("n"));
    let k: usize = args.get(2).map_or(5, |s| s.parse().expect("k"));
    let days: usize = args.get(3).map_or(1_000_000, |s| s.parse().expect("days"));
    let detail = args.get(4).is_some_and(|s| s == "detail");
    let theta = vec![1.0 / k as f64; n * k];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let bids: Vec<i64> = (0..n * days)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % k as u64) as i64
        })
        .collect();
    let mut ledger = BidLedger::new(&theta, n, k, 0.5).expect("valid ledger");
    let mut flags = vec![false; n * days];
    let (mut m, mut j) = (vec![0.0; n * days], vec![0.0; n * days]);
    let start = Instant::now();
    let out = RecordOutput {
        flags: &mut flags,
        detail: detail.then_some((&mut m[..], &mut j[..])),
    };
    ledger.record(&bids, days, out).expect("valid bids");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "n={n} K={k} days={days} detail={detail}: {:.3} s, {:.2} M days/s, {:.0} MB, flagged {}",
        secs,
        days as f64 / secs / 1e6,
        ledger.nbytes() as f64 / 1e6,
        flags.iter().filter(|&&f| f).count()
    );
}
