//! The `api_keys` and `stores` tables: merchants (stores) and their keys, stored as SHA-256
//! hashes with the scopes each key holds.

use diesel::prelude::*;

use super::schema::{api_keys, stores};
use super::{Conn, StoreError};
use crate::auth::{Merchant, Scopes};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: i64,
    pub label: Option<String>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    pub store_id: i64,
    pub scopes: String,
}

impl ApiKeyRow {
    /// Who the key acts for. A stored scope name this build does not know grants nothing.
    pub fn merchant(&self) -> Merchant {
        Merchant {
            key_id: self.id,
            store_id: self.store_id,
            scopes: Scopes::parse(&self.scopes).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = stores)]
pub struct StoreRow {
    pub id: i64,
    pub name: String,
    pub created_ms: i64,
}

pub fn insert(
    conn: &mut Conn,
    key_hash: &[u8],
    label: Option<&str>,
    store_id: i64,
    scopes: Scopes,
    now_ms: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(api_keys::table)
        .values((
            api_keys::key_hash.eq(key_hash),
            api_keys::label.eq(label),
            api_keys::created_ms.eq(now_ms),
            api_keys::store_id.eq(store_id),
            api_keys::scopes.eq(scopes.to_string()),
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

/// A new store; `None` when the name is taken.
pub fn insert_store(conn: &mut Conn, name: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
    let taken = stores::table
        .filter(stores::name.eq(name))
        .select(stores::id)
        .first::<i64>(conn)
        .optional()?;
    if taken.is_some() {
        return Ok(None);
    }
    Ok(Some(
        diesel::insert_into(stores::table)
            .values((stores::name.eq(name), stores::created_ms.eq(now_ms)))
            .returning(stores::id)
            .get_result(conn)?,
    ))
}

pub fn list_stores(conn: &mut Conn) -> Result<Vec<StoreRow>, StoreError> {
    Ok(stores::table
        .order(stores::id)
        .select(StoreRow::as_select())
        .load(conn)?)
}

/// The store with this name, or with this id when `name_or_id` is a number no store is named.
pub fn find_store(conn: &mut Conn, name_or_id: &str) -> Result<Option<StoreRow>, StoreError> {
    let by_name = stores::table
        .filter(stores::name.eq(name_or_id))
        .select(StoreRow::as_select())
        .first(conn)
        .optional()?;
    match (by_name, name_or_id.parse::<i64>()) {
        (Some(row), _) => Ok(Some(row)),
        (None, Ok(id)) => Ok(stores::table
            .filter(stores::id.eq(id))
            .select(StoreRow::as_select())
            .first(conn)
            .optional()?),
        (None, Err(_)) => Ok(None),
    }
}

/// Sets (or with `None` clears) the confirmation count of the store with this name or id.
/// Returns false when there is no such store.
pub fn set_store_confirmations(
    conn: &mut Conn,
    name_or_id: &str,
    count: Option<u32>,
) -> Result<bool, StoreError> {
    let Some(found) = find_store(conn, name_or_id)? else {
        return Ok(false);
    };
    let count = count
        .map(i32::try_from)
        .transpose()
        .map_err(|_| StoreError::Corrupt("confirmations out of range".into()))?;
    diesel::update(stores::table.filter(stores::id.eq(found.id)))
        .set(stores::confirmations.eq(count))
        .execute(conn)?;
    Ok(true)
}

/// Sets (or with `None` removes) the xpub of the store with this name or id. The next index
/// starts again at 0 for a new key. Returns false when there is no such store.
pub fn set_store_xpub(
    conn: &mut Conn,
    name_or_id: &str,
    xpub: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(found) = find_store(conn, name_or_id)? else {
        return Ok(false);
    };
    diesel::update(stores::table.filter(stores::id.eq(found.id)))
        .set((stores::xpub.eq(xpub), stores::next_index.eq(0)))
        .execute(conn)?;
    Ok(true)
}
