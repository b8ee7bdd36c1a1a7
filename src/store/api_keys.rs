//! The `api_keys` table: merchants' keys, stored as SHA-256 hashes.

use diesel::prelude::*;

use super::schema::api_keys;
use super::{Conn, StoreError};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub label: Option<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

pub fn insert(
    conn: &mut Conn,
    key_hash: &[u8],
    label: Option<&str>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(api_keys::table)
        .values((
            api_keys::key_hash.eq(key_hash),
            api_keys::label.eq(label),
            api_keys::created_ms.eq(now_ms),
        ))
        .returning(api_keys::id)
        .get_result(conn)?)
}

/// The key with this hash, if it exists and is not revoked.
pub fn find_active(conn: &mut Conn, key_hash: &[u8]) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .filter(api_keys::key_hash.eq(key_hash))
        .filter(api_keys::revoked_ms.is_null())
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut Conn) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(api_keys::table
        .order(api_keys::id)
        .select(ApiKeyRow::as_select())
        .load(conn)?)
}

/// Revokes a key; returns whether an active key was revoked.
pub fn revoke(conn: &mut Conn, id: i64, now_ms: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::revoked_ms.is_null()),
    )
    .set(api_keys::revoked_ms.eq(now_ms))
    .execute(conn)?;
    Ok(n == 1)
}
