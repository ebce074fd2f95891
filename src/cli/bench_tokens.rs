//! `healthcard bench-tokens` (hidden): helpers for `benches/load.sh`.
//!
//! - `bench-tokens --kind static|dynamic --count N [--clinic C]` mints `N`
//!   tokens for the store's active cards with the local active signing key and
//!   writes one token per line on standard output: what a load run needs,
//!   without `N` HTTP calls. Cards are taken in id order (random, ids are
//!   UUIDv4) and reused round-robin when `N` exceeds them; dynamic tokens are
//!   each unique (fresh `cti`), so every line can be accepted exactly once.
//! - `bench-tokens --floor SECS [--threads T]` measures, in this process and
//!   without the database, the bare ring Ed25519 verification rate of a real
//!   token's Sig_structure (the floor every verification pays) and the
//!   library's `token::verify` rate, on one thread and on `T` threads. It
//!   prints one JSON object. `load.sh` uses it for the crypto ceiling.
//!
//! Not a public interface: it reads every active card id at once and holds
//! the tokens in memory (about 150 bytes each).

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::ClinicCode;
use crate::service::AppContext;
use crate::store::{cards, clinics};
use crate::token::{self, KeyRing, SigningKey, TokenKind, Validation};

#[derive(Args)]
pub(super) struct BenchTokensArgs {
    /// `static` or `dynamic`.
    #[arg(long, default_value = "static")]
    kind: String,
    /// How many tokens to write.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Only cards of residents linked at this clinic.
    #[arg(long)]
    clinic: Option<String>,
    /// Token lifetime in seconds (default: the configured one for the kind).
    #[arg(long)]
    lifetime: Option<i64>,
    /// Minting threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Instead of minting: measure the verification floor for SECS seconds
    /// per measurement and print JSON.
    #[arg(long, value_name = "SECS")]
    floor: Option<f64>,
}

pub(super) fn run(settings: Settings, args: BenchTokensArgs) -> anyhow::Result<ExitCode> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    if let Some(secs) = args.floor {
        return floor(secs, threads);
    }
    let kind = match args.kind.as_str() {
        "static" => TokenKind::Static,
        "dynamic" => TokenKind::Dynamic,
        other => anyhow::bail!("--kind must be static or dynamic, not {other:?}"),
    };
    let lifetime = args.lifetime.unwrap_or(match kind {
        TokenKind::Static => settings.static_token_ttl_secs,
        TokenKind::Dynamic => settings.dynamic_token_ttl_secs,
    });
    let (ctx, _) = AppContext::open_existing(settings)?;
    let ids = active_cards(&ctx, args.clinic.as_deref())?;
    if ids.is_empty() {
        anyhow::bail!("no active cards in the store: import a population first");
    }
    let ring = ctx.keys.current();
    let now = chrono::Utc::now().timestamp();
    let tokens = mint_all(&ring, &ids, kind, now, lifetime, args.count, threads)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    for chunk in &tokens {
        for t in chunk {
            out.write_all(t.as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    eprintln!(
        "minted {} {} tokens for {} active cards",
        args.count,
        kind.as_str(),
        ids.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ids of every active card, or of those whose resident is linked at `clinic`.
fn active_cards(ctx: &AppContext, clinic: Option<&str>) -> anyhow::Result<Vec<Uuid>> {
    let mut conn = ctx.conn()?;
    let clinic = match clinic {
        None => None,
        Some(code) => {
            let code = ClinicCode::parse(code)?;
            let clinic = clinics::find_by_code(&mut conn, &code)?
                .ok_or_else(|| anyhow::anyhow!("no clinic with code {}", code.as_str()))?;
            Some(clinic.id)
        }
    };
    Ok(cards::active_ids(&mut conn, clinic)?
        .into_iter()
        .map(Uuid::from)
        .collect())
}

/// Mints `count` tokens over `threads` threads; chunks come back in order.
fn mint_all(
    ring: &KeyRing,
    ids: &[Uuid],
    kind: TokenKind,
    now: i64,
    lifetime: i64,
    count: usize,
    threads: usize,
) -> anyhow::Result<Vec<Vec<String>>> {
    let per = count.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = (t * per).min(count);
                let end = ((t + 1) * per).min(count);
                s.spawn(move || -> anyhow::Result<Vec<String>> {
                    let mut v = Vec::with_capacity(end - start);
                    for i in start..end {
                        let card = ids[i % ids.len()];
                        let minted = ring
                            .mint(card, kind, now, lifetime)
                            .map_err(|e| anyhow::anyhow!("minting: {e:?}"))?;
                        v.push(minted.text);
                    }
                    Ok(v)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a minting thread panicked"))?
            })
            .collect()
    })
}

/// Runs `f` as often as it can for `secs` on each of `threads` threads and
/// returns the total calls per second.
fn rate(secs: f64, threads: usize, f: impl Fn() -> bool + Sync) -> f64 {
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let f = &f;
                s.spawn(move || {
                    let t0 = Instant::now();
                    let mut n = 0u64;
                    let mut ok = 0u64;
                    // Check the clock every 256 calls only.
                    while t0.elapsed() < budget {
                        for _ in 0..256 {
                            ok += u64::from(std::hint::black_box(f()));
                            n += 1;
                        }
                    }
                    assert_eq!(ok, n, "verification failed during the measurement");
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

fn floor(secs: f64, threads: usize) -> anyhow::Result<ExitCode> {
    use coset::TaggedCborSerializable;
    use ring::signature::{UnparsedPublicKey, ED25519};

    let key = SigningKey::generate();
    let mut ring = KeyRing::new("HC");
    ring.set_active(key.clone());
    let now = chrono::Utc::now().timestamp();
    let minted = ring
        .mint(Uuid::new_v4(), TokenKind::Static, now, 5 * 365 * 86_400)
        .map_err(|e| anyhow::anyhow!("minting: {e:?}"))?;
    let text = minted.text;
    let body = text
        .strip_prefix(token::PREFIX)
        .ok_or_else(|| anyhow::anyhow!("minted token lacks the prefix"))?;
    let cose = base45::decode(body)?;
    let sign1 = coset::CoseSign1::from_tagged_slice(&cose)
        .map_err(|e| anyhow::anyhow!("parsing our own token: {e:?}"))?;
    let tbs = sign1.tbs_data(b"");
    let sig = sign1.signature.clone();
    let pk = key.public_key();
    let validation = Validation::at(now);

    let bare = || {
        UnparsedPublicKey::new(&ED25519, std::hint::black_box(&pk))
            .verify(std::hint::black_box(&tbs), std::hint::black_box(&sig))
            .is_ok()
    };
    let lib = || token::verify(std::hint::black_box(&text), &ring, &validation).is_ok();
    let sign = || {
        !ring
            .mint(Uuid::nil(), TokenKind::Dynamic, now, 120)
            .map(|m| m.text)
            .unwrap_or_default()
            .is_empty()
    };
    // The 1-thread figures alternate in five short rounds and keep each
    // one's best, so that a neighbour's burst on a shared machine does not
    // land on one side of the ratio only.
    let (mut ring_1, mut lib_1) = (0f64, 0f64);
    for _ in 0..5 {
        ring_1 = ring_1.max(rate(secs / 5.0, 1, bare));
        lib_1 = lib_1.max(rate(secs / 5.0, 1, lib));
    }
    let mint_1 = rate(secs, 1, sign);
    let ring_n = rate(secs, threads, bare);
    let lib_n = rate(secs, threads, lib);
    println!(
        "{}",
        serde_json::json!({
            "threads": threads,
            "token_chars": text.len(),
            "ring_verify_per_sec_1t": ring_1.round(),
            "library_verify_per_sec_1t": lib_1.round(),
            // time of a library verify / time of a bare ring verify
            "library_over_ring_cost": (ring_1 / lib_1 * 1000.0).round() / 1000.0,
            "mint_per_sec_1t": mint_1.round(),
            "ring_verify_per_sec": ring_n.round(),
            "library_verify_per_sec": lib_n.round(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
