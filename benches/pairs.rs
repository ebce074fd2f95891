//! Paired ratios of the token path against its floor, per algorithm:
//! `cargo bench --bench pairs`.
//!
//! Criterion measures one function after another, so on a shared machine a
//! change of load between two benchmarks shows up as a ratio (issue 17's
//! 1.1x targets). Here each round times a block of the floor and a block of
//! the library call back to back, in ABBA order, and the figure is the median
//! of the per-round ratios with its quartiles: load that drifts slowly
//! cancels within a round. Figures: docs/performance.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use healthcard::token::{self, Alg};

#[path = "common/floors.rs"]
mod floors;
use floors::Fixture;

/// Time of `n` calls of `f`.
fn block(n: u32, f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed()
}

/// Median and quartiles of `rounds` ratios `lib / floor`, each from two
/// blocks of each in ABBA order.
fn paired(rounds: usize, n: u32, floor: &mut dyn FnMut(), lib: &mut dyn FnMut()) -> [f64; 3] {
    block(n.min(5), floor);
    block(n.min(5), lib);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| {
            let a1 = block(n, floor);
            let b1 = block(n, lib);
            let b2 = block(n, lib);
            let a2 = block(n, floor);
            (b1 + b2).as_secs_f64() / (a1 + a2).as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
    [q(0.25), q(0.5), q(0.75)]
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // one short round only checks that every path runs. A filter names
    // algorithms to run.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let measuring = args.iter().any(|a| a == "--bench");
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let rounds = if measuring { 31 } else { 1 };
    let block_time = Duration::from_millis(if measuring { 20 } else { 1 });
    println!("| algorithm | op | lib / floor (median) | quartiles |");
    println!("| --- | --- | --- | --- |");
    for alg in Alg::ALL {
        if !filter.is_empty() && !filter.iter().any(|f| alg.to_string().contains(f.as_str())) {
            continue;
        }
        let Fixture {
            key,
            ring,
            claims,
            text,
            tbs,
            validation,
            library,
            mut floor_verify,
            mut floor_sign,
            ..
        } = Fixture::new(alg);
        // Blocks of about 20 ms whatever the algorithm's speed.
        let per = block(5, &mut *floor_sign) / 5;
        let n = (block_time.as_nanos() / per.as_nanos().max(1)).clamp(1, 20_000) as u32;
        let rows: [(&str, [f64; 3]); 3] = [
            (
                "verify: token::verify / floor verify",
                paired(rounds, n, &mut *floor_verify, &mut || {
                    black_box(token::verify(black_box(&text), &ring, &validation).is_ok());
                }),
            ),
            (
                "sign: token::mint / floor sign",
                paired(rounds, n, &mut *floor_sign, &mut || {
                    black_box(token::mint(&key, black_box(&claims)).expect("mint"));
                }),
            ),
            (
                "sign: SigningKey::sign / floor sign",
                paired(rounds, n, &mut *floor_sign, &mut || {
                    black_box(key.sign(black_box(&tbs)).expect("sign"));
                }),
            ),
        ];
        for (op, [q1, m, q3]) in rows {
            println!("| {alg} | {op} ({library}) | {m:.3}x | {q1:.3}-{q3:.3} |");
        }
    }
}
