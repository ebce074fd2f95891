//! The replay set of dynamic tokens: shared by every node through the
//! database, so a token scanned at one node is refused at all the others.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::replay;
use super::{DbConnection, StoreError};

/// Records the token id; `true` the first time, `false` if it was already
/// seen (atomically, on any node: see [`accept_many`]). Keep `expires_at` =
/// the token's expiry so [`purge_expired`] can drop it.
pub fn accept_once(
    conn: &mut DbConnection,
    token_id: &[u8; 16],
    expires_at: NaiveDateTime,
) -> Result<bool, StoreError> {
    Ok(accept_many(conn, &[(*token_id, expires_at)])?
        .pop()
        .unwrap_or(false))
}

/// Records a batch of token ids at once, inside the caller's transaction:
/// answer `i` is `true` if `tokens[i]` was new. One `INSERT … ON CONFLICT DO
/// NOTHING RETURNING` (SQLite 3.35+, PostgreSQL 9.5+): the rows it returns are
/// the ones inserted. A concurrent insert of the same id on another node makes
/// PostgreSQL wait for that transaction and then skip the row, so each id is
/// accepted exactly once across nodes. Ids go in sorted, so two batches that
/// share ids take their row locks in the same order and cannot deadlock. An
/// id given twice here counts once (the first).
pub fn accept_many(
    conn: &mut DbConnection,
    tokens: &[([u8; 16], NaiveDateTime)],
) -> Result<Vec<bool>, StoreError> {
    use std::collections::HashSet;
    let mut rows: Vec<([u8; 16], NaiveDateTime)> = Vec::with_capacity(tokens.len());
    let mut seen = HashSet::with_capacity(tokens.len());
    rows.extend(tokens.iter().filter(|(id, _)| seen.insert(*id)));
    rows.sort_unstable_by_key(|(id, _)| *id);
    let mut inserted: HashSet<Vec<u8>> = HashSet::with_capacity(rows.len());
    match conn {
        DbConnection::Postgresql(c) if !rows.is_empty() => {
            let (ids, expires) = sorted_columns(&rows);
            let spent: Vec<Vec<u8>> = pg::Spend { ids, expires }.load(c)?;
            inserted.extend(spent);
        }
        DbConnection::Postgresql(_) => {}
        DbConnection::Sqlite(c) => {
            // Two bound values a row: 1,000 rows stay far below SQLite's limit.
            for chunk in rows.chunks(1000) {
                let values: Vec<_> = chunk
                    .iter()
                    .map(|(id, exp)| {
                        (
                            replay::token_id.eq(id.to_vec()),
                            replay::expires_at.eq(*exp),
                        )
                    })
                    .collect();
                let ids: Vec<Vec<u8>> = diesel::insert_into(replay::table)
                    .values(&values)
                    .on_conflict_do_nothing()
                    .returning(replay::token_id)
                    .get_results(c)?;
                inserted.extend(ids);
            }
        }
    }
    Ok(tokens
        .iter()
        .map(|(id, _)| inserted.remove(id.as_slice()))
        .collect())
}

/// Token ids and their expiries as one array each, sorted by id: what the
/// PostgreSQL statements that spend take (here and in
/// [`super::access_log::Head::spend_and_append_if_current`]), in the order
/// that keeps two batches sharing ids from locking them in opposite orders.
pub(super) fn sorted_columns(
    tokens: &[([u8; 16], NaiveDateTime)],
) -> (Vec<Vec<u8>>, Vec<NaiveDateTime>) {
    let mut sorted = tokens.to_vec();
    sorted.sort_unstable_by_key(|(id, _)| *id);
    sorted
        .into_iter()
        .map(|(id, exp)| (id.to_vec(), exp))
        .unzip()
}

mod pg {
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::{Array, Binary, Timestamp};
    use diesel::{PgConnection, QueryResult, RunQueryDsl};

    /// `INSERT … SELECT * FROM unnest(ids, expiries) ORDER BY 1 ON CONFLICT
    /// DO NOTHING RETURNING token_id`: one array per column and a static
    /// query id, so diesel prepares it once per connection where a `VALUES`
    /// list would be parsed and planned for every batch.
    pub(super) struct Spend {
        pub(super) ids: Vec<Vec<u8>>,
        pub(super) expires: Vec<chrono::NaiveDateTime>,
    }

    impl QueryId for Spend {
        type QueryId = Spend;
        const HAS_STATIC_QUERY_ID: bool = true;
    }

    impl Query for Spend {
        type SqlType = Binary;
    }

    impl QueryFragment<Pg> for Spend {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("INSERT INTO replay (token_id, expires_at) SELECT * FROM unnest(");
            out.push_bind_param::<Array<Binary>, _>(&self.ids)?;
            out.push_sql(", ");
            out.push_bind_param::<Array<Timestamp>, _>(&self.expires)?;
            out.push_sql(") ORDER BY 1 ON CONFLICT DO NOTHING RETURNING token_id");
            Ok(())
        }
    }

    impl RunQueryDsl<PgConnection> for Spend {}
}

/// Drops entries whose tokens have expired (an expired token is refused by
/// its `exp` anyway). Returns how many were dropped.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> Result<usize, StoreError> {
    Ok(diesel::delete(replay::table.filter(replay::expires_at.lt(now))).execute(conn)?)
}
