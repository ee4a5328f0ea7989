//! The database: one connection type over SQLite and PostgreSQL (diesel `MultiConnection`),
//! an r2d2 pool, embedded migrations, and the blocking-pool bridge every query goes through.

pub mod schema;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{
    AnsiTransactionManager, Connection, Instrumentation, InstrumentationEvent, SimpleConnection,
    TransactionManager,
};
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either database; queries written once with diesel's DSL run on both.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the data lives, parsed from `FUNNELGRAPH_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(String),
    Postgres(String),
}

impl Target {
    /// A `postgres://` (or `postgresql://`) URL selects PostgreSQL; anything else is a SQLite
    /// file path, with an optional `sqlite://` prefix.
    pub fn parse(url: &str) -> Target {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Target::Postgres(url.to_string())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Target::Sqlite(path.to_string())
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL with any password removed, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Target::Sqlite(path) => format!("sqlite://{path}"),
            Target::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &url[scheme + 3..at];
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
                }
                _ => url.clone(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("query: {0}")]
    Query(#[from] DieselError),
    #[error("connect: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// Counts the SQL statements run through a pool (so tests can prove there is no N+1) and logs
/// the slow ones. One instance per connection (its start time), counters shared by the pool.
#[derive(Clone)]
struct StatementCounter {
    count: Arc<AtomicU64>,
    slow: Arc<AtomicU64>,
    threshold: Duration,
    started: Option<std::time::Instant>,
}

impl Default for StatementCounter {
    fn default() -> Self {
        StatementCounter {
            count: Arc::default(),
            slow: Arc::default(),
            threshold: Duration::from_millis(DEFAULT_SLOW_QUERY_MS),
            started: None,
        }
    }
}

thread_local! {
    /// Whether statements run on this thread are counted (background threads are not).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Stops counting the statements this thread runs: for background work that no request asked
/// for (the journey index's tail), so a request's statement count is its own.
pub fn stop_counting_this_thread() {
    COUNTED.with(|c| c.set(false));
}

/// Statements slower than this are logged (`FUNNELGRAPH_SLOW_QUERY_MS`).
pub const DEFAULT_SLOW_QUERY_MS: u64 = 500;

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                if COUNTED.with(std::cell::Cell::get) {
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
                self.started = Some(std::time::Instant::now());
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let Some(started) = self.started.take() else {
                    return;
                };
                let elapsed = started.elapsed();
                if elapsed >= self.threshold {
                    self.slow.fetch_add(1, Ordering::Relaxed);
                    // The statement without its bind values: those can be personal data.
                    let text = query.to_string();
                    let sql = text.split(" -- binds:").next().unwrap_or("");
                    tracing::warn!(
                        elapsed_ms = elapsed.as_millis() as u64,
                        failed = error.is_some(),
                        sql = %sql.chars().take(2_000).collect::<String>(),
                        "slow statement"
                    );
                }
            }
            _ => {}
        }
    }
}

/// r2d2 manager that opens the configured backend, never guessing from the URL twice.
pub struct Manager {
    target: Target,
    counter: StatementCounter,
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = DbError;

    fn connect(&self) -> Result<AnyConnection, DbError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(path)?;
                // WAL lets readers run beside the one writer; FULL makes a commit durable
                // before it is acknowledged; busy_timeout queues writers instead of failing.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY;",
                )?;
                conn.set_instrumentation(self.counter.clone());
                Ok(AnyConnection::Sqlite(conn))
            }
            Target::Postgres(url) => {
                let mut conn = PgConnection::establish(url)?;
                conn.batch_execute("SET TIME ZONE 'UTC'")?;
                conn.set_instrumentation(self.counter.clone());
                Ok(AnyConnection::Postgresql(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        <AnyConnection as Connection>::TransactionManager::is_broken_transaction_manager(conn)
    }
}

pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// The database handle the services use: cheap to clone, safe to share.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    backend: Backend,
    statements: StatementCounter,
    /// A streaming replica for reads (`FUNNELGRAPH_DATABASE_READ_URL`), when configured.
    replica: Option<r2d2::Pool<Manager>>,
    replica_reads: Arc<AtomicU64>,
    /// Per request: set once the request writes (or is a mutation), so that from then on its
    /// reads see its own writes on the primary instead of a replica that may lag.
    primary_only: Arc<std::sync::atomic::AtomicBool>,
    /// One permit per pooled connection: work beyond what the pools can serve waits here,
    /// as a parked future, instead of as a blocking thread parked on the pool (under load
    /// that piled up dozens of threads on two cores and stalled statements for 0.5 s).
    gate: Arc<tokio::sync::Semaphore>,
    /// SQLite: one write transaction at a time per process, queued here as parked futures.
    /// SQLite has one writer anyway; without this queue the waiting writers each held a pooled
    /// connection (starving the readers) and slept in its busy handler's coarse steps (up to
    /// 100 ms a try), which made the tail of a write load seconds long.
    writer: Option<Arc<tokio::sync::Semaphore>>,
    /// PostgreSQL: write transactions run side by side (shared), but one that conflicted
    /// `ALONE_AFTER` times runs its next tries alone among this instance's writers
    /// (exclusive), so a row many requests write at once (one hot lead) cannot starve it into
    /// failing. tokio's `RwLock` is fair: no new shared holder gets in while an exclusive one
    /// waits.
    alone: Arc<tokio::sync::RwLock<()>>,
}

impl Db {
    pub fn connect(target: &Target) -> Result<Db, DbError> {
        Db::connect_with(target, Duration::from_millis(DEFAULT_SLOW_QUERY_MS))
    }

    /// Connects with a slow-statement threshold of its own.
    pub fn connect_with(target: &Target, slow_statement: Duration) -> Result<Db, DbError> {
        let counter = StatementCounter {
            threshold: slow_statement,
            ..StatementCounter::default()
        };
        let size = match target.backend() {
            Backend::Sqlite => 8,
            Backend::Postgres => 12,
        };
        let manager = Manager {
            target: target.clone(),
            counter: counter.clone(),
        };
        // No `SELECT 1` before every checkout (r2d2's default): it doubled the round trips of
        // a small request. A connection that broke is discarded by `has_broken` and errors.
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .connection_timeout(Duration::from_secs(10))
            .test_on_check_out(false)
            .build(manager)?;
        Ok(Db {
            pool,
            backend: target.backend(),
            statements: counter,
            replica: None,
            replica_reads: Arc::default(),
            primary_only: Arc::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(size as usize)),
            writer: (target.backend() == Backend::Sqlite)
                .then(|| Arc::new(tokio::sync::Semaphore::new(1))),
            alone: Arc::default(),
        })
    }

    /// Sends reads to a PostgreSQL streaming replica; writes stay on this primary.
    pub fn with_replica(mut self, target: &Target) -> Result<Db, DbError> {
        if target.backend() != Backend::Postgres || self.backend != Backend::Postgres {
            return Err(DbError::Migration(
                "a read replica needs PostgreSQL for both FUNNELGRAPH_DATABASE_URL and FUNNELGRAPH_DATABASE_READ_URL".into(),
            ));
        }
        let manager = Manager {
            target: target.clone(),
            counter: self.statements.clone(),
        };
        self.replica = Some(
            r2d2::Pool::builder()
                .max_size(self.pool.max_size())
                .connection_timeout(Duration::from_secs(10))
                .test_on_check_out(false)
                .build(manager)?,
        );
        self.gate.add_permits(self.pool.max_size() as usize);
        Ok(self)
    }

    /// The handle one request uses: same pools, its own read-your-writes flag.
    pub fn for_request(&self) -> Db {
        Db {
            primary_only: Arc::default(),
            ..self.clone()
        }
    }

    /// From now on this request reads from the primary.
    pub fn pin_to_primary(&self) {
        self.primary_only.store(true, Ordering::Relaxed);
    }

    /// Reads served by the replica so far.
    pub fn replica_reads(&self) -> u64 {
        self.replica_reads.load(Ordering::Relaxed)
    }

    /// A connection for a read: the replica unless this request has written.
    fn reader(&self) -> Result<PooledConnection, DbError> {
        match &self.replica {
            Some(replica) if !self.primary_only.load(Ordering::Relaxed) => {
                self.replica_reads.fetch_add(1, Ordering::Relaxed);
                Ok(replica.get()?)
            }
            _ => self.get(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Number of SQL statements this pool has run so far.
    pub fn statements_run(&self) -> u64 {
        self.statements.count.load(Ordering::Relaxed)
    }

    /// Statements that ran longer than the slow-statement threshold.
    pub fn slow_statements(&self) -> u64 {
        self.statements.slow.load(Ordering::Relaxed)
    }

    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
    }

    pub fn pool_max(&self) -> u32 {
        self.pool.max_size()
    }

    pub fn get(&self) -> Result<PooledConnection, DbError> {
        Ok(self.pool.get()?)
    }

    /// Applies the embedded migrations of this backend.
    pub fn migrate(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        let applied = match &mut *conn {
            AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
        }
        .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(applied.len())
    }

    /// Runs blocking database work on the blocking pool, never on an actix worker.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_on(false, work).await
    }

    /// The same on the primary even when a replica serves reads: for the journey index, which
    /// must see every acknowledged write.
    pub async fn run_primary<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        self.run_on(true, work).await
    }

    /// `run_primary` when `primary`, else `run`.
    pub async fn run_on<T, E, F>(&self, primary: bool, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        // The request's span follows the work onto the blocking thread, so what the database
        // layer logs (slow statements, retries) carries the request id.
        let span = tracing::Span::current();
        let permit = self
            .gate
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| E::from(DbError::Join(e.to_string())))?;
        tokio::task::spawn_blocking(move || {
            // Held until the work is done, even when the request stopped waiting for it.
            let _permit = permit;
            let _entered = span.enter();
            let mut conn = if primary { db.get()? } else { db.reader()? };
            work(&mut conn)
        })
        .await
        .map_err(|e| E::from(DbError::Join(e.to_string())))?
    }

    /// Runs a whole use case in one write transaction on the blocking pool, retrying it when
    /// the database reports a conflict between concurrent writers (the work must be
    /// repeatable, which a transaction that rolled back is). The queue, the turn to write and
    /// the pause between tries are waited for as parked futures, never on a pooled connection.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: Fn(&mut AnyConnection) -> Result<T, E> + Send + Sync + 'static,
        T: Send + 'static,
        E: From<DbError> + RetryableError + Send + 'static,
    {
        self.pin_to_primary();
        let join = |e: &dyn std::fmt::Display| E::from(DbError::Join(e.to_string()));
        // Each try holds a share of it until its transaction ends, even when the request
        // stopped waiting for it.
        let turn = match &self.writer {
            Some(writer) => Some(Arc::new(
                writer.clone().acquire_owned().await.map_err(|e| join(&e))?,
            )),
            None => None,
        };
        let work = Arc::new(work);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let guard = if attempt > ALONE_AFTER {
                Guard::Alone {
                    _held: self.alone.clone().write_owned().await,
                }
            } else {
                Guard::Shared {
                    _held: self.alone.clone().read_owned().await,
                }
            };
            let (turn, work) = (turn.clone(), work.clone());
            let done = self
                .run(move |conn| {
                    let _held = (turn, guard);
                    write_transaction(conn, &*work)
                })
                .await;
            match done {
                Err(e) if attempt < MAX_WRITE_ATTEMPTS && e.is_retryable() => {
                    // Exponential backoff with jitter, so writers that collided do not
                    // collide again in lockstep.
                    let ceiling = 2u64.saturating_pow(attempt.min(7)).min(100);
                    let pause = rand::random_range(ceiling / 2..=ceiling);
                    tracing::debug!(attempt, pause_ms = pause, "write conflict; retrying");
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    }
}

/// A write's hold on `Db::alone` for one try.
enum Guard {
    Shared {
        _held: tokio::sync::OwnedRwLockReadGuard<()>,
    },
    Alone {
        _held: tokio::sync::OwnedRwLockWriteGuard<()>,
    },
}

/// How often a write that conflicted with another is tried in all before the conflict is
/// reported (as INTERNAL: the client may retry the same idempotent request).
const MAX_WRITE_ATTEMPTS: u32 = 30;

/// Conflicts after which a write's further tries run alone among the instance's writers.
const ALONE_AFTER: u32 = 3;

/// Errors that may say "another writer got there first: try again".
pub trait RetryableError {
    fn is_retryable(&self) -> bool;
}

/// Whether a diesel error is a conflict between concurrent writers rather than bad input.
pub fn is_write_conflict(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::SerializationFailure | DatabaseErrorKind::UniqueViolation => true,
            _ => {
                let msg = info.message();
                msg.contains("database is locked")
                    || msg.contains("deadlock detected")
                    || msg.contains("database table is locked")
            }
        },
        _ => false,
    }
}

/// Bumps the data version that report caches are keyed by. Every write bumps it once its
/// changes are committed (on SQLite as the transaction's last statement, on PostgreSQL as a
/// statement of its own right after the commit, where concurrent bumps queue on the row lock
/// instead of failing serialization), and the write is acknowledged only after the bump. So a
/// report that read version v loaded its facts after every bump up to v, hence after the
/// commit of every write those bumps stand for: an entry cached under the current version
/// never misses an acknowledged write, whatever order the writers took their ids in.
/// (A crash between a PostgreSQL commit and its bump leaves that write unversioned until the
/// next write; the caches are per process, so a restart starts them empty.)
/// The PostgreSQL bump of a committed write, in a READ COMMITTED transaction of its own
/// (whatever the server's default isolation), where concurrent bumps wait for the row lock
/// instead of failing. It is retried by itself: the write is committed, so its failure is
/// never the write's (which could otherwise be retried and applied twice); if it still fails,
/// the write stays unversioned until the next one, and that is logged.
fn bump_after_commit(conn: &mut AnyConnection) {
    for attempt in 1..=5u64 {
        let bumped = match conn {
            AnyConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction_sql(
                c,
                "BEGIN ISOLATION LEVEL READ COMMITTED",
            ),
            AnyConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN"),
        }
        .map_err(DbError::Query)
        .and_then(|()| bump_data_version::<DbError>(conn))
        .and_then(|()| {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(DbError::Query)
        });
        match bumped {
            Ok(()) => return,
            Err(e) => {
                let _ =
                    <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
                tracing::warn!(attempt, error = %e, "data version bump failed after a commit");
                std::thread::sleep(Duration::from_millis(10 * attempt));
            }
        }
    }
    tracing::error!("data version not bumped after a committed write: cached reports may miss it until the next write");
}

fn bump_data_version<E: From<DbError>>(conn: &mut AnyConnection) -> Result<(), E> {
    use diesel::prelude::*;
    use schema::data_version::dsl::*;
    diesel::update(data_version.filter(id.eq(1)))
        .set(version.eq(version + 1))
        .execute(conn)
        .map(|_| ())
        .map_err(|e| E::from(DbError::Query(e)))
}

/// One write transaction: `BEGIN IMMEDIATE` on SQLite, so the write lock is taken up front
/// and two writers never deadlock upgrading a read lock; `SERIALIZABLE` on PostgreSQL, so two
/// use cases that read-then-write the same rows (a replay check, a stage check) cannot both
/// act on what they read: one of them fails with a serialization error and is retried.
/// SQLite: a page cache of 64 MiB on this connection while `on` (a batch of the import
/// touches more index pages than the default 2 MiB holds: 680k records took 36 s with it, 30 s
/// with 64 MiB), back to the default after, so idle pooled connections keep little.
/// Nothing on PostgreSQL, whose buffers are the server's.
pub fn large_cache(conn: &mut AnyConnection, on: bool) -> Result<(), DieselError> {
    if let AnyConnection::Sqlite(c) = conn {
        c.batch_execute(if on {
            "PRAGMA cache_size = -65536"
        } else {
            "PRAGMA cache_size = -2000"
        })?;
    }
    Ok(())
}

pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<DbError>,
{
    let begun = match conn {
        AnyConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        AnyConnection::Postgresql(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN ISOLATION LEVEL SERIALIZABLE")
        }
    };
    begun.map_err(|e| E::from(DbError::Query(e)))?;
    // SQLite writers are serial: the bump is the transaction's last statement. PostgreSQL
    // writers run concurrently under SERIALIZABLE, where a row every writer updates would fail
    // all but one of them: there the bump is its own statement right after the commit.
    let bump_inside = matches!(conn, AnyConnection::Sqlite(_));
    let done = work(conn).and_then(|value| {
        if bump_inside {
            bump_data_version(conn).map(|()| value)
        } else {
            Ok(value)
        }
    });
    match done {
        Ok(value) => {
            <AnyConnection as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(|e| E::from(DbError::Query(e)))?;
            if !bump_inside {
                bump_after_commit(conn);
            }
            Ok(value)
        }
        Err(e) => {
            // The original error is what the caller needs; a failed rollback marks the
            // connection broken and the pool discards it.
            let _ = <AnyConnection as Connection>::TransactionManager::rollback_transaction(conn);
            Err(e)
        }
    }
}
