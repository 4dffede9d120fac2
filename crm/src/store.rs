//! The database: embedded SQLite (one file, WAL) by default, PostgreSQL when
//! `database_url` says `postgres://…`. Each backend has its own migrations; queries are
//! written once, in SQL both accept (`$N` placeholders, `ON CONFLICT`, `TRUE`/`FALSE`), and
//! run on whichever pool the store holds through [`on_db!`](crate::on_db).

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A fault in a field named at run time (a card field: `values.<latin>`).
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("{field}: already taken")]
    Conflict { field: &'static str },
    #[error("not found")]
    NotFound,
    /// Other objects still refer to the one to be removed.
    #[error("in use by {0}")]
    InUse(String),
    /// Something outside (SMTP) failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A setting the operation needs is not made (the request is fine; the server is
    /// not set up for it).
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error("file storage: {0}")]
    Io(String),
    #[error("password hashing: {0}")]
    Hash(String),
    /// A field's new type would lose this many stored values; repeat with confirmation.
    #[error("{values} stored values would be lost")]
    DataLoss { values: u64 },
    /// The caller's rights or field access do not allow it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A search ran out of its time budget ([`Store::search_budget`]).
    #[error("the search took longer than {0:?}")]
    TooCostly(std::time::Duration),
}

/// A validation error on `field`.
pub(crate) fn invalid(field: &'static str, message: &str) -> StoreError {
    StoreError::Invalid {
        field,
        message: message.to_string(),
    }
}

/// A query-string parameter nobody reads, named.
pub(crate) fn unknown_parameter(name: &str) -> StoreError {
    StoreError::InvalidField {
        field: name.to_string(),
        message: format!("unknown parameter {name}"),
    }
}

/// A database error, a unique-constraint violation reported as a conflict on `field`.
pub(crate) fn conflict_on(field: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict { field },
        e => e.into(),
    }
}

/// How long a table search may run: a costly search must not hold a connection (and a
/// core) for long. PostgreSQL enforces it as `statement_timeout`, SQLite through a
/// progress handler ([`on_budgeted_db!`](crate::on_budgeted_db)).
pub const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// A SQLite connection from `pool` whose statements are interrupted once `budget` has
/// passed. The handler is taken off again when the connection goes back to the pool.
pub async fn budgeted(
    pool: &SqlitePool,
    budget: std::time::Duration,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StoreError> {
    let mut conn = pool.acquire().await?;
    let deadline = std::time::Instant::now() + budget;
    conn.lock_handle()
        .await?
        .set_progress_handler(1_000, move || std::time::Instant::now() < deadline);
    Ok(conn)
}

/// A database error, an exhausted time budget (SQLite's interrupt, PostgreSQL's
/// statement timeout) reported as [`StoreError::TooCostly`].
pub fn over_budget(budget: std::time::Duration) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(d)
            if d.message().contains("interrupted") || d.code().as_deref() == Some("57014") =>
        {
            StoreError::TooCostly(budget)
        }
        _ => e.into(),
    }
}

/// Like [`on_db!`], for a search under the store's time budget: `$conn` is an executor
/// whose statements stop (as [`StoreError::TooCostly`]) once the budget is spent.
#[macro_export]
macro_rules! on_budgeted_db {
    ($store:expr, $conn:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite(pool) => {
                let mut held = $crate::store::budgeted(pool, $store.search_budget).await?;
                let $conn = &mut *held;
                $body
            }
            $crate::store::Db::Postgres($conn) => $body,
        }
    };
}

/// The pool of one backend.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is: the body
/// is compiled once per backend, so rows are read with each driver's own types.
#[macro_export]
macro_rules! on_db {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// A statement and its arguments, for batches built at run time (the journal's).
pub type Statement = (std::borrow::Cow<'static, str>, Vec<Arg>);

/// The most arguments one multi-row statement of [`insert_rows`] carries: SQLite looks a
/// parameter's name up by a linear scan, so binding costs the square of their number.
const ARGS_PER_STATEMENT: usize = 256;

/// `{head} VALUES (…), (…) {tail}` statements for `rows` (an insert, or an update from
/// the values), many rows each: one statement
/// per row would cost a round trip each. Chunks have power-of-two sizes, so a handful of
/// prepared statements serve every batch.
pub fn insert_rows(head: &str, tail: &str, rows: Vec<Vec<Arg>>) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut rows = rows.into_iter().peekable();
    let mut left = rows.len();
    while let Some(first) = rows.peek() {
        let width = first.len();
        let fit = (ARGS_PER_STATEMENT / width.max(1)).max(1);
        let n = (1 << fit.ilog2()).min(1 << left.ilog2());
        let mut sql = format!("{head} VALUES ");
        let mut args = Vec::with_capacity(n * width);
        for r in 0..n {
            let row = rows.next().unwrap_or_default();
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..row.len() {
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", args.len() + c + 1));
            }
            sql.push(')');
            args.extend(row);
        }
        sql.push(' ');
        sql.push_str(tail);
        out.push((std::borrow::Cow::Owned(sql), args));
        left -= n;
    }
    out
}

/// A value bound to a query built at run time (filters, imports).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bool(bool),
}

/// Binds every [`Arg`] in order to a query of either backend.
#[macro_export]
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                $crate::store::Arg::Int(v) => q.bind(*v),
                $crate::store::Arg::Real(v) => q.bind(*v),
                $crate::store::Arg::Text(v) => q.bind(v.clone()),
                $crate::store::Arg::Bool(v) => q.bind(*v),
            };
        }
        q
    }};
}

#[derive(Clone, Debug)]
pub struct Store {
    pub db: Db,
    /// Where national phone numbers are read (ISO 3166 code, `crm.default_country`).
    pub country: String,
    /// Where files attached to cards are kept.
    pub files_dir: std::path::PathBuf,
    /// The largest file a card takes.
    pub max_file_bytes: u64,
    /// Where e-mail from cards goes out.
    pub smtp: crate::mail::SmtpSettings,
    /// Where report and filter periods' days begin and end (`crm.time_zone`).
    pub time_zone: chrono_tz::Tz,
    /// How long one search of the partner table may run ([`SEARCH_BUDGET`]).
    pub search_budget: std::time::Duration,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`: `postgres://…` or
    /// `postgresql://…` for PostgreSQL, anything else is a SQLite URL.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The table's queries are built per request and bind search patterns: a generic
            // plan, blind to how rare a pattern is, walks the whole table where the trigram
            // indexes answer in milliseconds. Every statement is planned with its values.
            let options = PgConnectOptions::from_str(url)?.options([
                ("plan_cache_mode", "force_custom_plan"),
                // A time budget for every statement: no search, however costly its
                // terms, holds a connection (and a core) for long.
                ("statement_timeout", "30s"), // = SEARCH_BUDGET
            ]);
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            let store = Store {
                db: Db::Postgres(pool.clone()),
                country: "RU".into(),
                files_dir: "data/files".into(),
                max_file_bytes: 25 << 20,
                smtp: Default::default(),
                time_zone: chrono_tz::Europe::Moscow,
                search_budget: SEARCH_BUDGET,
            };
            // Fields made before their kind had a trigram index get it now (once).
            for field in store.form().await?.fields {
                if let Some(index) = crate::search::trigram_index(field.id, field.spec.kind) {
                    sqlx::query(&index).execute(&pool).await?;
                }
            }
            return Ok(store);
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Unicode case-insensitive search: SQLite's LIKE folds ASCII only.
            .with_regexp()
            .busy_timeout(std::time::Duration::from_secs(5))
            // The partner table's indexes at a million cards outgrow SQLite's 2 MB default
            // cache: every write then reads pages back from the kernel.
            .pragma("cache_size", "-131072")
            .pragma("mmap_size", "1073741824")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A search's time budget ends with it (see `budgeted`).
            .after_release(|conn, _| {
                Box::pin(async move {
                    conn.lock_handle().await?.remove_progress_handler();
                    Ok(true)
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        // Statistics for tables never analysed or grown much since (SQLite's advice at open).
        sqlx::query("PRAGMA optimize = 0x10002")
            .execute(&pool)
            .await?;
        Ok(Store {
            db: Db::Sqlite(pool),
            country: "RU".into(),
            files_dir: "data/files".into(),
            max_file_bytes: 25 << 20,
            smtp: Default::default(),
            time_zone: chrono_tz::Europe::Moscow,
            search_budget: SEARCH_BUDGET,
        })
    }

    /// The same database through a pool of one connection of its own: for the event log's
    /// writer, which must never wait behind the API's queries for a connection.
    pub async fn dedicated(&self) -> Result<Store, StoreError> {
        let db = match &self.db {
            Db::Sqlite(pool) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(std::time::Duration::from_secs(60))
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
            Db::Postgres(pool) => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(std::time::Duration::from_secs(60))
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
        };
        Ok(Store { db, ..self.clone() })
    }

    /// Sets the time zone periods are read in from its IANA name (`Europe/Moscow`).
    pub fn set_time_zone(&mut self, name: &str) -> Result<(), StoreError> {
        self.time_zone = name
            .parse()
            .map_err(|_| invalid("time_zone", "an IANA time zone, e.g. Europe/Moscow"))?;
        Ok(())
    }

    /// Renews the query planner's statistics after a bulk change, so that, say, a sort
    /// column's index is walked instead of a broad filter's rows being sorted.
    pub(crate) async fn analyse(&self) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(pool) => {
                // Sampled: exact statistics of a million cards take seconds, a sample a few ms.
                let mut conn = pool.acquire().await?;
                sqlx::query("PRAGMA analysis_limit = 1000")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("ANALYZE").execute(&mut *conn).await?;
            }
            Db::Postgres(pool) => {
                sqlx::query("ANALYZE partners").execute(pool).await?;
            }
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    pub async fn user_exists(&self, login: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = on_db!(self, pool => {
            sqlx::query_scalar("SELECT id FROM users WHERE login = $1")
                .bind(login)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    pub async fn ping(&self) -> bool {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(on_db!(self, pool => {
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?
        }))
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        on_db!(self, pool => {
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
