//! Typed settings from `FUNNELGRAPH_*` environment variables (SPEC §1). Secrets are kept in
//! a type that never prints them.

use std::fmt;

use crate::db::Target;

/// A secret that `Debug` and logs never show.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: Target,
    pub read_database: Option<Target>,
    pub bind: String,
    pub jwt_secret: Option<Secret>,
    pub jwt_public_key: Option<String>,
    pub jwt_jwks: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub introspection: bool,
    pub max_body_bytes: usize,
    /// Milliseconds a query may run (`FUNNELGRAPH_REQUEST_TIMEOUT_MS`, default 30000).
    pub request_timeout_ms: u64,
    /// Statements slower than this many milliseconds are logged (`FUNNELGRAPH_SLOW_QUERY_MS`).
    pub slow_query_ms: u64,
    /// Milliseconds a caller's user row is reused (`FUNNELGRAPH_USER_CACHE_MS`, default 1000;
    /// 0 reads it on every request).
    pub user_cache_ms: u64,
    /// Milliseconds a verified token is remembered (`FUNNELGRAPH_TOKEN_CACHE_MS`, default
    /// 60000; never past the token's `exp`; 0 verifies every request).
    pub token_cache_ms: u64,
    pub currency: String,
    /// A manifest of trusted documents (`FUNNELGRAPH_TRUSTED_DOCUMENTS`, SPEC §11).
    pub trusted_documents: Option<String>,
    /// Only trusted documents run (`FUNNELGRAPH_TRUSTED_ONLY=true`).
    pub trusted_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

/// A whole-number setting: `default` when unset, a clear error naming it when not a number.
fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    unit: &str,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError {
            name,
            reason: format!("expected a number of {unit}, got {v}"),
        }),
    }
}

/// A true/false setting (`1`/`0` too): `default` when unset, a clear error naming it otherwise.
fn flag(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).as_deref() {
        None => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(ConfigError {
            name,
            reason: format!("expected true or false, got {other}"),
        }),
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the configuration through `get`, so tests need not touch the environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let database = Target::parse(
            &get("FUNNELGRAPH_DATABASE_URL").unwrap_or_else(|| "funnelgraph.db".into()),
        );
        let read_database = get("FUNNELGRAPH_DATABASE_READ_URL").map(|u| Target::parse(&u));
        let introspection = flag(&get, "FUNNELGRAPH_INTROSPECTION", true)?;
        let max_body_bytes = number(&get, "FUNNELGRAPH_MAX_BODY_BYTES", 1024 * 1024, "bytes")?;
        let request_timeout_ms = match get("FUNNELGRAPH_REQUEST_TIMEOUT_MS") {
            None => 30_000,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError {
                    name: "FUNNELGRAPH_REQUEST_TIMEOUT_MS",
                    reason: format!("expected a positive number of milliseconds, got {v}"),
                })?,
        };
        let slow_query_ms = number(
            &get,
            "FUNNELGRAPH_SLOW_QUERY_MS",
            crate::db::DEFAULT_SLOW_QUERY_MS,
            "milliseconds",
        )?;
        let user_cache_ms = number(&get, "FUNNELGRAPH_USER_CACHE_MS", 1_000, "milliseconds")?;
        let token_cache_ms = number(&get, "FUNNELGRAPH_TOKEN_CACHE_MS", 60_000, "milliseconds")?;
        let currency = get("FUNNELGRAPH_CURRENCY").unwrap_or_else(|| "USD".into());
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError {
                name: "FUNNELGRAPH_CURRENCY",
                reason: format!("expected an ISO 4217 code such as USD, got {currency}"),
            });
        }
        let trusted_documents = get("FUNNELGRAPH_TRUSTED_DOCUMENTS");
        let trusted_only = flag(&get, "FUNNELGRAPH_TRUSTED_ONLY", false)?;
        Ok(Config {
            database,
            read_database,
            bind: get("FUNNELGRAPH_BIND").unwrap_or_else(|| "127.0.0.1:8080".into()),
            jwt_secret: get("FUNNELGRAPH_JWT_SECRET").map(Secret::new),
            jwt_public_key: get("FUNNELGRAPH_JWT_PUBLIC_KEY"),
            jwt_jwks: get("FUNNELGRAPH_JWT_JWKS"),
            jwt_issuer: get("FUNNELGRAPH_JWT_ISSUER"),
            jwt_audience: get("FUNNELGRAPH_JWT_AUDIENCE"),
            introspection,
            max_body_bytes,
            request_timeout_ms,
            slow_query_ms,
            user_cache_ms,
            token_cache_ms,
            currency,
            trusted_documents,
            trusted_only,
        })
    }
}
