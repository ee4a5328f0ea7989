//! Who is calling: JWT verification (SPEC §6) and the permission matrix in `policy`.

pub mod jwks;
pub mod policy;

use std::str::FromStr;

use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

pub use policy::{Owned, Read, Scope, TransitionRights, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Finance,
    MarketingManager,
    Marketer,
    SalesRep,
    Analyst,
    Integration,
}

pub const ROLES: [Role; 7] = [
    Role::Admin,
    Role::Finance,
    Role::MarketingManager,
    Role::Marketer,
    Role::SalesRep,
    Role::Analyst,
    Role::Integration,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Finance => "FINANCE",
            Role::MarketingManager => "MARKETING_MANAGER",
            Role::Marketer => "MARKETER",
            Role::SalesRep => "SALES_REP",
            Role::Analyst => "ANALYST",
            Role::Integration => "INTEGRATION",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ROLES
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s}"))
    }
}

/// The authenticated caller: the token's subject and role. The role is authoritative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub role: Role,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// What the server reads from a verified token; `exp`, `nbf`, `iss` and `aud` are checked by
/// the validation (and may take any shape the RFC allows, such as an `aud` array).
#[derive(Deserialize)]
struct Identity {
    sub: String,
    role: String,
    /// Read again only to know how long a verified token may be remembered.
    #[serde(default)]
    exp: Option<serde_json::Value>,
}

/// The verification keys configured for this server.
#[derive(Clone)]
pub struct Verifier {
    hmac: Option<DecodingKey>,
    public: Option<(Algorithm, DecodingKey)>,
    jwks: Option<jwks::Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    /// Tokens already verified, shared by the verifier's clones (off until `with_cache`).
    cache: std::sync::Arc<TokenCache>,
}

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send Authorization: Bearer <JWT>)")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read public key {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("public key {0} is not an RSA, EC (P-256) or Ed25519 PEM public key")]
    Unsupported(String),
    #[error("no JWT key configured")]
    NoKey,
    #[error("configure either a public key or a JWKS, not both")]
    Ambiguous,
}

impl Verifier {
    pub fn new(
        secret: Option<&[u8]>,
        public_key_pem: Option<(&str, &[u8])>,
        jwks: Option<jwks::Jwks>,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Result<Verifier, KeyError> {
        let hmac = secret.map(DecodingKey::from_secret);
        let public = match public_key_pem {
            None => None,
            Some((path, pem)) => Some(
                DecodingKey::from_rsa_pem(pem)
                    .map(|k| (Algorithm::RS256, k))
                    .or_else(|_| DecodingKey::from_ec_pem(pem).map(|k| (Algorithm::ES256, k)))
                    .or_else(|_| DecodingKey::from_ed_pem(pem).map(|k| (Algorithm::EdDSA, k)))
                    .map_err(|_| KeyError::Unsupported(path.to_string()))?,
            ),
        };
        if hmac.is_none() && public.is_none() && jwks.is_none() {
            return Err(KeyError::NoKey);
        }
        if public.is_some() && jwks.is_some() {
            return Err(KeyError::Ambiguous);
        }
        Ok(Verifier {
            hmac,
            public,
            jwks,
            issuer,
            audience,
            cache: std::sync::Arc::new(TokenCache::new(std::time::Duration::ZERO)),
        })
    }

    /// Remembers each verified token for at most `ttl` (and never past its `exp`), so a
    /// client that sends the same token on every request pays for one signature check.
    pub fn with_cache(mut self, ttl: std::time::Duration) -> Verifier {
        self.cache = std::sync::Arc::new(TokenCache::new(ttl));
        self
    }

    /// `verify`, answered from the cache when this exact token was verified moments ago.
    pub fn verify_cached(&self, token: &str) -> Result<Caller, AuthError> {
        let now = chrono::Utc::now().timestamp();
        if let Some(caller) = self.cache.get(token, now, std::time::Instant::now()) {
            return Ok(caller);
        }
        let (caller, exp) = self.verify_with_expiry(token)?;
        if let Some(exp) = exp {
            self.cache
                .put(token, caller.clone(), exp, std::time::Instant::now());
        }
        Ok(caller)
    }

    /// Verifies a bearer token: signature with the key of the algorithm the server
    /// configured (never the one the token asks for), `exp` required, `nbf` honoured,
    /// `iss`/`aud` when configured, and a role this server knows.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        self.verify_with_expiry(token).map(|(caller, _)| caller)
    }

    /// `verify`, also returning the token's `exp` in whole seconds.
    fn verify_with_expiry(&self, token: &str) -> Result<(Caller, Option<i64>), AuthError> {
        let invalid = |m: &str| AuthError::Invalid(m.to_string());
        let header = decode_header(token).map_err(|_| invalid("malformed token"))?;
        let from_set;
        let key = match (header.alg, &self.jwks) {
            (Algorithm::HS256, _) => self.hmac.as_ref(),
            // With a key set the token must say which key: no kid, no fallback.
            (alg, Some(set)) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| invalid("token has no kid; this server picks its key by kid"))?;
                from_set = set.key(kid).ok_or_else(|| invalid("unknown key id"))?;
                (from_set.algorithm == alg).then_some(&from_set.key)
            }
            (alg, None) => self
                .public
                .as_ref()
                .filter(|(configured, _)| *configured == alg)
                .map(|(_, key)| key),
        }
        .ok_or_else(|| invalid("algorithm not accepted by this server"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".to_string());
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_string());
            }
            None => validation.validate_aud = false,
        }
        let data = decode::<Identity>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            AuthError::Invalid(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "token expired",
                    ErrorKind::ImmatureSignature => "token not valid yet (nbf)",
                    ErrorKind::InvalidIssuer => "wrong issuer",
                    ErrorKind::InvalidAudience => "wrong audience",
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                    ErrorKind::InvalidClaimFormat(_) => "exp and nbf must be numbers",
                    _ => "token rejected",
                }
                .to_string(),
            )
        })?;
        let role = Role::from_str(&data.claims.role).map_err(|_| invalid("unknown role"))?;
        if data.claims.sub.is_empty() {
            return Err(invalid("empty subject"));
        }
        // Floored: a fractional exp is remembered a fraction of a second less.
        let exp = data.claims.exp.as_ref().and_then(|n| {
            let n = n.as_number()?;
            n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
        });
        Ok((
            Caller {
                sub: data.claims.sub,
                role,
            },
            exp,
        ))
    }
}

/// Verified tokens by their exact text. An entry is used only while the token is still
/// unexpired (the same `exp` + leeway rule the verification applies) and younger than the
/// time-to-live; a key removed from a JWKS stops its tokens within that time. Only tokens
/// that passed verification are stored, so a forged token is checked every time.
pub struct TokenCache(crate::ttl::TtlMap<(Caller, i64)>);

/// Tokens remembered at most.
const TOKEN_CACHE_CAPACITY: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: std::time::Duration) -> TokenCache {
        TokenCache(crate::ttl::TtlMap::new(ttl, TOKEN_CACHE_CAPACITY))
    }

    /// The caller of a token remembered less than `ttl` ago and unexpired at `now` (seconds).
    pub fn get(&self, token: &str, now: i64, instant: std::time::Instant) -> Option<Caller> {
        self.0
            .get(token, instant)
            .filter(|(_, exp)| exp.saturating_add(LEEWAY_SECONDS as i64) >= now)
            .map(|(caller, _)| caller)
    }

    pub fn put(&self, token: &str, caller: Caller, exp: i64, instant: std::time::Instant) {
        self.0.put(token, (caller, exp), instant);
    }
}

/// Mints an HS256 token, for `funnelgraph token`, the demo, and tests.
pub fn mint_hs256(
    secret: &[u8],
    sub: &str,
    role: Role,
    ttl_seconds: i64,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_string(),
        role: role.as_str().to_string(),
        exp: now + ttl_seconds,
        iss: issuer.map(str::to_string),
        aud: audience.map(str::to_string),
        iat: Some(now),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
}

/// Extracts the token of an `Authorization: Bearer <token>` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token.trim())
}
