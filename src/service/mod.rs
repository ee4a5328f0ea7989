//! Use cases: load with `repo`, decide with `domain` and `auth`, write with `repo`, each
//! write in one transaction.

pub mod accounts;
pub mod attribution;
pub mod batch;
pub mod cache;
pub mod campaigns;
pub mod compensation;
pub mod credits;
pub mod currency;
pub mod funnel;
pub mod import;
pub mod index;
pub mod leads;
pub mod models;
pub mod moves;
pub mod opportunities;
pub mod periods;
pub mod reads;
pub mod record;
pub mod scoring;
pub mod users;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::auth::{policy, Caller, Read, Scope, Write};
use crate::db::{is_write_conflict, AnyConnection, Db, DbError, RetryableError};
use crate::domain::money::{Money, MoneyError};
use crate::repo;

/// What can go wrong in a use case; each maps to one GraphQL error code (SPEC §7).
///
/// It deliberately has no `Display`: async-graphql turns anything displayable into an error
/// without a code, so the only way to a GraphQL error is the mapping in `graphql::error`.
#[derive(Debug)]
pub enum AppError {
    BadInput(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PeriodClosed(String),
    TooComplex(String),
    Db(DbError),
    Internal(String),
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        AppError::Db(e)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(DbError::Query(e))
    }
}

impl From<MoneyError> for AppError {
    fn from(e: MoneyError) -> Self {
        AppError::BadInput(e.to_string())
    }
}

impl RetryableError for AppError {
    fn is_retryable(&self) -> bool {
        matches!(self, AppError::Db(DbError::Query(e)) if is_write_conflict(e))
    }
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput(_) => "BAD_USER_INPUT",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict(_) => "CONFLICT",
            AppError::PeriodClosed(_) => "PERIOD_CLOSED",
            AppError::TooComplex(_) => "QUERY_TOO_COMPLEX",
            AppError::Db(_) | AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The cause of an internal error, for the log only.
    pub fn internal_detail(&self) -> Option<String> {
        match self {
            AppError::Db(e) => Some(e.to_string()),
            AppError::Internal(d) => Some(d.clone()),
            _ => None,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            AppError::BadInput(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::Conflict(m)
            | AppError::PeriodClosed(m)
            | AppError::TooComplex(m) => m.clone(),
            AppError::Db(_) | AppError::Internal(_) => "internal error".to_string(),
        }
    }
}

impl AppError {
    /// A sum that no longer fits in i64 minor units: the client's data or period is too big
    /// for one figure, and the message says so instead of wrapping or hiding it.
    pub fn overflow(what: &str) -> AppError {
        AppError::BadInput(format!(
            "{what} exceeds the largest amount this server can represent ({} minor units); \
             ask for a shorter period or check the amounts recorded",
            i64::MAX
        ))
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Everything a use case needs about the request: the database, the caller, settings.
#[derive(Clone)]
pub struct Ctx {
    pub db: Db,
    pub caller: Caller,
    /// The caller's row in `users`, when there is one.
    pub user_id: Option<i64>,
    /// That row, read once per request (so `me` costs no second query).
    pub user: Option<std::sync::Arc<repo::users::UserRow>>,
    pub currency: String,
    /// Facts shared by reports, per data version.
    pub reports: std::sync::Arc<cache::ReportCache>,
    /// The server's short-lived cache of callers' user rows (None: always read).
    pub users: Option<std::sync::Arc<users::UserCache>>,
}

impl Ctx {
    /// Builds the context of a request, looking up the caller's user row once.
    pub async fn for_caller(
        db: Db,
        caller: Caller,
        currency: String,
        reports: std::sync::Arc<cache::ReportCache>,
    ) -> AppResult<Ctx> {
        Self::for_caller_cached(db, caller, currency, reports, None).await
    }

    /// The same, taking the caller's user row from `users` when it was read a moment ago
    /// (a request that needs nothing else then costs no database round trip at all).
    pub async fn for_caller_cached(
        db: Db,
        caller: Caller,
        currency: String,
        reports: std::sync::Arc<cache::ReportCache>,
        users: Option<std::sync::Arc<users::UserCache>>,
    ) -> AppResult<Ctx> {
        let cached = users.as_ref().and_then(|c| c.get(&caller.sub));
        let user = match cached {
            Some(known) => known,
            None => {
                let sub = caller.sub.clone();
                let generation = users.as_ref().map(|c| c.generation()).unwrap_or(0);
                let row = db
                    .run(move |conn| Ok::<_, AppError>(repo::users::by_external_id(conn, &sub)?))
                    .await?
                    .map(std::sync::Arc::new);
                if let Some(cache) = &users {
                    cache.put(&caller.sub, row.clone(), generation);
                }
                row
            }
        };
        Ok(Ctx {
            db,
            caller,
            user_id: user.as_ref().map(|u| u.id),
            user,
            currency,
            reports,
            users,
        })
    }

    /// Whether the caller owns a row whose owner is `owner_id`. A caller without a user row
    /// owns nothing (an unowned row is nobody's).
    pub fn owns(&self, owner_id: Option<i64>) -> bool {
        owner_id.is_some() && owner_id == self.user_id
    }

    pub fn read_scope(&self, what: Read) -> Scope {
        policy::read(self.caller.role, what)
    }

    /// Fails with FORBIDDEN unless the caller may read some of `what`.
    pub fn require_read(&self, what: Read, label: &str) -> AppResult<Scope> {
        match self.read_scope(what) {
            Scope::None => Err(AppError::Forbidden(format!(
                "role {} may not read {label}",
                self.caller.role.as_str()
            ))),
            scope => Ok(scope),
        }
    }

    /// Fails with FORBIDDEN unless the caller may write some of `what`.
    pub fn require_write(&self, what: Write, label: &str) -> AppResult<Scope> {
        match policy::write(self.caller.role, what) {
            Scope::None => Err(AppError::Forbidden(format!(
                "role {} may not {label}",
                self.caller.role.as_str()
            ))),
            scope => Ok(scope),
        }
    }

    /// Runs a use case in one write transaction (retried whole on a conflict): the form every
    /// mutation takes, `use_case_in(ctx, conn, &input)`.
    pub async fn write<I, T>(
        &self,
        input: I,
        use_case: fn(&Ctx, &mut AnyConnection, &I) -> AppResult<T>,
    ) -> AppResult<T>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
    {
        let ctx = self.clone();
        self.db
            .write(move |conn| use_case(&ctx, conn, &input))
            .await
    }

    pub fn parse_money(&self, amount: &str, currency: &str) -> AppResult<Money> {
        Ok(Money::parse(amount, currency, &self.currency)?)
    }

    /// Writes the audit entry of a mutation, inside its transaction.
    pub fn audit(
        &self,
        conn: &mut AnyConnection,
        operation: &str,
        external_id: Option<&str>,
        detail: &str,
    ) -> AppResult<()> {
        repo::audit::record(
            conn,
            &repo::audit::NewAudit {
                occurred_at: Utc::now().naive_utc(),
                actor: &self.caller.sub,
                role: self.caller.role.as_str(),
                operation,
                external_id,
                detail: Some(detail),
            },
        )?;
        Ok(())
    }
}

/// Whether an upsert created, changed, or left a row as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// An externalId must be present and reasonable.
pub fn check_external_id(what: &str, value: &str) -> AppResult<()> {
    if value.trim().is_empty() {
        return Err(AppError::BadInput(format!(
            "{what} externalId must not be empty"
        )));
    }
    if value.len() > 200 {
        return Err(AppError::BadInput(format!(
            "{what} externalId is longer than 200 characters"
        )));
    }
    Ok(())
}

/// Free attributes as given, sorted by key: BAD_USER_INPUT for a key given twice or empty.
pub fn sorted_attributes(list: &[(String, String)]) -> AppResult<Vec<(String, String)>> {
    let mut sorted = list.to_vec();
    sorted.sort();
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(AppError::BadInput(format!(
                "attribute \"{}\" is given twice",
                pair[0].0
            )));
        }
    }
    if let Some((k, _)) = sorted.iter().find(|(k, _)| k.trim().is_empty()) {
        return Err(AppError::BadInput(format!(
            "attribute key \"{k}\" is empty"
        )));
    }
    Ok(sorted)
}

pub fn check_non_empty(field: &str, value: &str) -> AppResult<()> {
    if value.trim().is_empty() {
        Err(AppError::BadInput(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}

/// A time as stored: to the microsecond, PostgreSQL's precision, on both databases (so a
/// value compares equal to itself read back, and a resend is a replay).
pub fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::Timelike;
    let t = t.naive_utc();
    t.with_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

pub fn not_found(what: &str, external_id: &str) -> AppError {
    AppError::NotFound(format!("no {what} with externalId \"{external_id}\""))
}
