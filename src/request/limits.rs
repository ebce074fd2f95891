//! Per-credential rate limits. The defaults let a busy hospital system verify
//! ~1,000 cards a second on one key, while a password-guessing loop is stopped
//! after a handful of tries (that part is in the database, so it holds across
//! nodes: see `service::admins`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Settings;
use crate::crypto::SecretHash;
use crate::domain::ClinicId;
use crate::error::AppError;
use crate::store::clinics::Clinic;

pub struct Limits {
    verify: DefaultKeyedRateLimiter<ClinicId>,
    holder: DefaultKeyedRateLimiter<SecretHash>,
    login_ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Node-to-node requests per peer node key (its kid).
    peer: DefaultKeyedRateLimiter<String>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn refused<C: Clock>(not_until: governor::NotUntil<C::Instant>, clock: &C) -> AppError
where
    C::Instant: governor::clock::Reference,
{
    let wait = not_until.wait_time_from(clock.now());
    AppError::RateLimited {
        retry_after: wait.as_secs() + 1,
    }
}

impl Limits {
    pub fn new(s: &Settings) -> Limits {
        Limits {
            verify: RateLimiter::keyed(
                Quota::per_second(nz(s.verify_rate_per_sec))
                    .allow_burst(nz(s.verify_rate_per_sec * 2)),
            ),
            holder: RateLimiter::keyed(
                Quota::per_minute(nz(s.holder_rate_per_min)).allow_burst(nz(s.holder_rate_per_min)),
            ),
            login_ip: RateLimiter::keyed(Quota::per_minute(nz(30)).allow_burst(nz(30))),
            peer: RateLimiter::keyed(
                Quota::per_second(nz(s.federation_peer_rate_per_sec))
                    .allow_burst(nz(s.federation_peer_rate_per_sec.saturating_mul(2))),
            ),
        }
    }

    pub fn verify_rate(&self, clinic: &Clinic) -> Result<(), AppError> {
        self.verify
            .check_key(&clinic.id)
            .map_err(|n| refused(n, &DefaultClock::default()))
    }

    pub fn holder_rate(&self, h: &SecretHash) -> Result<(), AppError> {
        self.holder
            .check_key(h)
            .map_err(|n| refused(n, &DefaultClock::default()))
    }

    /// Sign-in attempts per client address (`proxy::client`), before any
    /// password is hashed: a cheap first stop on this node; the throttles that
    /// hold across nodes are in `service::admins`.
    pub fn login_rate(&self, ip: IpAddr) -> Result<(), AppError> {
        self.login_ip
            .check_key(&ip)
            .map_err(|n| refused(n, &DefaultClock::default()))
    }

    /// A peer node's request (`/federation/v1/*`), counted per node key once
    /// its signature verified (so that nobody spends a peer's quota with a
    /// forged key id) and before anything is written.
    pub fn peer_rate(&self, node_kid: &str) -> Result<(), AppError> {
        self.peer
            .check_key(&node_kid.to_owned())
            .map_err(|n| refused(n, &DefaultClock::default()))
    }

    /// The answer to a missing or wrong credential. API keys, holder
    /// credentials and sessions carry 256 random bits, so guessing them is
    /// hopeless and a plain 401 is enough.
    pub fn auth_failure(&self, _req: &HttpRequest) -> AppError {
        AppError::Unauthorized
    }

    /// Drops idle keys now and then so the maps stay small.
    pub fn housekeeping(&self) {
        self.verify.retain_recent();
        self.holder.retain_recent();
        self.login_ip.retain_recent();
        self.peer.retain_recent();
    }
}
