//! Token signing keys as stored: plain bytes and strings. The token core does
//! the crypto (the private half arrives already sealed under the master key).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::signing_keys;
use super::{corrupt, now, on_unique, Conflict, DbConnection, StoreError};

pub use crate::domain::KeyState;

#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// base64url (no padding) of the kid bytes in tokens' headers.
    pub kid: String,
    pub public_key: Vec<u8>,
    /// Sealed with the master key by the token core.
    pub sealed_private: Vec<u8>,
    /// `ed25519`, `es256` or `sm2` (the token core parses it).
    pub alg: String,
    pub state: KeyState,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
struct Row {
    kid: String,
    public_key: Vec<u8>,
    sealed_private: Vec<u8>,
    state: String,
    created_at: NaiveDateTime,
    retired_at: Option<NaiveDateTime>,
    revoked_at: Option<NaiveDateTime>,
    alg: String,
}

/// Stores a new active key and retires the previous active one, in one
/// transaction. `Conflict(Conflict::SigningKeyActive)` if another node rotated at
/// the same moment (at most one active key: a partial unique index).
pub fn insert_active(
    conn: &mut DbConnection,
    kid: &str,
    alg: &str,
    public_key: &[u8],
    sealed_private: &[u8],
) -> Result<StoredSigningKey, StoreError> {
    let at = now();
    conn.transaction(|conn| {
        diesel::update(
            signing_keys::table.filter(signing_keys::state.eq(KeyState::Active.as_str())),
        )
        .set((
            signing_keys::state.eq(KeyState::Retired.as_str()),
            signing_keys::retired_at.eq(at),
        ))
        .execute(conn)?;
        diesel::insert_into(signing_keys::table)
            .values((
                signing_keys::kid.eq(kid),
                signing_keys::public_key.eq(public_key),
                signing_keys::sealed_private.eq(sealed_private),
                signing_keys::alg.eq(alg),
                signing_keys::state.eq(KeyState::Active.as_str()),
                signing_keys::created_at.eq(at),
            ))
            .execute(conn)
            .map_err(on_unique(Conflict::SigningKeyActive))?;
        Ok(StoredSigningKey {
            kid: kid.to_owned(),
            public_key: public_key.to_vec(),
            sealed_private: sealed_private.to_vec(),
            alg: alg.to_owned(),
            state: KeyState::Active,
            created_at: at,
            retired_at: None,
            revoked_at: None,
        })
    })
}

/// Every key, oldest first.
pub fn list(conn: &mut DbConnection) -> Result<Vec<StoredSigningKey>, StoreError> {
    signing_keys::table
        .order((signing_keys::created_at.asc(), signing_keys::kid.asc()))
        .select(Row::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| {
            Ok(StoredSigningKey {
                state: r.state.parse().map_err(corrupt("key state"))?,
                kid: r.kid,
                public_key: r.public_key,
                sealed_private: r.sealed_private,
                alg: r.alg,
                created_at: r.created_at,
                retired_at: r.retired_at,
                revoked_at: r.revoked_at,
            })
        })
        .collect()
}

/// Revokes a key: tokens it signed stop verifying. Idempotent; `NotFound` if
/// no such kid.
pub fn revoke(conn: &mut DbConnection, kid: &str) -> Result<(), StoreError> {
    let n = diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::state.ne(KeyState::Revoked.as_str())),
    )
    .set((
        signing_keys::state.eq(KeyState::Revoked.as_str()),
        signing_keys::revoked_at.eq(now()),
    ))
    .execute(conn)?;
    if n == 0 {
        signing_keys::table
            .find(kid)
            .select(signing_keys::kid)
            .first::<String>(conn)?;
    }
    Ok(())
}
