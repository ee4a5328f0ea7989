//! Users: the CRM sync upserts them; `me` answers who the caller is.

use crate::db::AnyConnection;
use std::str::FromStr;

use super::{check_external_id, check_non_empty, AppError, AppResult, Ctx, Outcome};
use crate::auth::{Role, Scope, Write};
use crate::repo::users::{self, UserRow, UserValues};

#[derive(Debug, Clone)]
pub struct UserInput {
    pub external_id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
}

/// Callers' user rows as read a moment ago, by `sub`, so that a request needing nothing else
/// (`{ me { id } }`) costs no database round trip. The absence of a row is remembered as its
/// presence is (service accounts and SSO users not yet synced have none, and would otherwise
/// cost a read on every request). Each entry lives at most `ttl`: a user's id never changes,
/// and a row created or changed through this server is seen at once (the entry is dropped
/// when its transaction commits); through another server, within `ttl`. Roles themselves come
/// from the token.
pub struct UserCache {
    rows: crate::ttl::TtlMap<Option<std::sync::Arc<UserRow>>>,
    /// Bumped by every `forget`: a lookup that began before a user write must not store what
    /// it read after that write dropped the entry.
    generation: std::sync::atomic::AtomicU64,
}

impl UserCache {
    const CAPACITY: usize = 10_000;

    pub fn new(ttl: std::time::Duration) -> UserCache {
        UserCache {
            rows: crate::ttl::TtlMap::new(ttl, Self::CAPACITY),
            generation: Default::default(),
        }
    }

    /// `Some(row or none)` when `sub` was looked up a moment ago, `None` when it must be read.
    pub fn get(&self, sub: &str) -> Option<Option<std::sync::Arc<UserRow>>> {
        self.rows.get(sub, std::time::Instant::now())
    }

    /// The generation to hand back to `put` with what is read next.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keeps what a lookup that started at `generation` read, unless a user was written since.
    pub fn put(&self, sub: &str, row: Option<std::sync::Arc<UserRow>>, generation: u64) {
        if self.generation() == generation {
            self.rows.put(sub, row, std::time::Instant::now());
        }
    }

    pub fn forget(&self, sub: &str) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.rows.forget(sub);
    }
}

pub async fn upsert(ctx: &Ctx, input: UserInput) -> AppResult<UserRow> {
    let ctx2 = ctx.clone();
    let external_id = input.external_id.clone();
    let row = ctx
        .db
        .write(move |conn| upsert_in(&ctx2, conn, &input))
        .await;
    // Dropped once committed (a request may have cached the old row until then); /import
    // does the same after each batch.
    if let Some(cache) = &ctx.users {
        cache.forget(&external_id);
    }
    row
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
pub fn upsert_in(ctx: &Ctx, conn: &mut AnyConnection, input: &UserInput) -> AppResult<UserRow> {
    ctx.require_write(Write::Ingest, "upsert users")?;
    check_external_id("user", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    if let Some(email) = &input.email {
        if !email.contains('@') {
            return Err(AppError::BadInput(format!(
                "\"{email}\" is not an email address"
            )));
        }
    }
    let values = UserValues {
        external_id: &input.external_id,
        name: &input.name,
        email: input.email.as_deref(),
        role: input.role.as_str(),
    };
    let outcome = match users::by_external_id(conn, &input.external_id)? {
        None => {
            users::insert(conn, &values)?;
            Outcome::Created
        }
        Some(row) => {
            if row.name == input.name && row.email == input.email && row.role == input.role.as_str()
            {
                Outcome::Unchanged
            } else {
                users::update(conn, row.id, &values)?;
                Outcome::Updated
            }
        }
    };
    ctx.audit(
        conn,
        "upsertUser",
        Some(&input.external_id),
        outcome.as_str(),
    )?;
    users::by_external_id(conn, &input.external_id)?
        .ok_or_else(|| AppError::Internal("user vanished after upsert".into()))
}

/// The caller's user row, or one made from the token when the `sub` has none yet.
pub async fn me(ctx: &Ctx) -> AppResult<UserRow> {
    let role = ctx.caller.role;
    let found = ctx.user.as_deref().cloned();
    Ok(found.unwrap_or_else(|| UserRow {
        id: 0,
        external_id: ctx.caller.sub.clone(),
        name: ctx.caller.sub.clone(),
        email: None,
        role: role.as_str().to_string(),
    }))
}

/// Whether the caller may see this user at all, and their email.
pub fn can_see_user(ctx: &Ctx, user_id: i64) -> bool {
    match ctx.read_scope(crate::auth::Read::Users) {
        Scope::All => true,
        Scope::Own(_) => ctx.user_id == Some(user_id),
        Scope::None => false,
    }
}

pub fn can_see_email(ctx: &Ctx, user_external_id: &str) -> bool {
    match ctx.read_scope(crate::auth::Read::UserEmail) {
        Scope::All => true,
        Scope::Own(_) => ctx.caller.sub == user_external_id,
        Scope::None => false,
    }
}

pub fn role_of(row: &UserRow) -> AppResult<Role> {
    Role::from_str(&row.role).map_err(AppError::Internal)
}
