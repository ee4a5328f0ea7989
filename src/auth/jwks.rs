//! A set of public keys from a JWKS file (`FUNNELGRAPH_JWT_JWKS`), chosen by `kid`.
//!
//! A token names its key with the header's `kid`; a token without one, or naming a key the set
//! does not hold, is refused — never verified against "the first key". Rotation is adding a
//! key to the file: when a token names an unknown `kid`, the file is read again if it changed
//! (at most once a second, so a stream of made-up `kid`s cannot keep the server re-reading it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::KeyError;

/// One verification key of the set and the one algorithm it verifies.
#[derive(Clone)]
pub struct SetKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

struct Loaded {
    keys: HashMap<String, SetKey>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// The key set, shared by every clone of the verifier.
#[derive(Clone)]
pub struct Jwks {
    path: String,
    loaded: Arc<Mutex<Loaded>>,
}

/// How often an unknown `kid` may make the server look at the file again.
const RECHECK: Duration = Duration::from_secs(1);

fn read(path: &str) -> Result<(HashMap<String, SetKey>, Option<SystemTime>), KeyError> {
    let read_error = |reason: String| KeyError::Read {
        path: path.to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| read_error(format!("not a JWKS document: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty()) else {
            return Err(read_error("every key needs a \"kid\"".into()));
        };
        // The algorithm is the key's: from its "alg", else from its type. HMAC keys are not
        // public keys and have no place in this file.
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::OctetKey(_), _) => {
                return Err(read_error(format!("key {kid} is a symmetric key")))
            }
            (_, Some(alg)) => Algorithm::try_from(alg)
                .map_err(|_| read_error(format!("key {kid} has an unsupported alg")))?,
            (AlgorithmParameters::RSA(_), None) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(p), None) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            (AlgorithmParameters::OctetKeyPair(_), None) => Algorithm::EdDSA,
            _ => return Err(read_error(format!("key {kid}: say its \"alg\""))),
        };
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(read_error(format!("key {kid} claims an HMAC algorithm")));
        }
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|_| read_error(format!("key {kid} is not a usable public key")))?;
        if keys
            .insert(kid.clone(), SetKey { algorithm, key })
            .is_some()
        {
            return Err(read_error(format!("kid {kid} appears twice")));
        }
    }
    if keys.is_empty() {
        return Err(read_error("the set holds no keys".into()));
    }
    Ok((keys, modified))
}

impl Jwks {
    /// Reads the set; a missing or malformed file is a startup error.
    pub fn load(path: &str) -> Result<Jwks, KeyError> {
        let (keys, modified) = read(path)?;
        Ok(Jwks {
            path: path.to_string(),
            loaded: Arc::new(Mutex::new(Loaded {
                keys,
                modified,
                checked: Instant::now(),
            })),
        })
    }

    /// The key a `kid` names, reading the file again if it changed since it was last read.
    pub fn key(&self, kid: &str) -> Option<SetKey> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = loaded.keys.get(kid) {
            return Some(key.clone());
        }
        if loaded.checked.elapsed() < RECHECK {
            return None;
        }
        loaded.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified != loaded.modified {
            match read(&self.path) {
                Ok((keys, modified)) => {
                    tracing::info!(path = %self.path, keys = keys.len(), "reloaded the JWKS");
                    loaded.keys = keys;
                    loaded.modified = modified;
                }
                // A half-written or broken file keeps the keys we have.
                Err(e) => tracing::warn!(error = %e, "kept the previous JWKS"),
            }
        }
        loaded.keys.get(kid).cloned()
    }

    /// Forces the next unknown `kid` to look at the file (tests rotate faster than a second).
    pub fn expire_check(&self) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        loaded.checked = Instant::now()
            .checked_sub(RECHECK)
            .unwrap_or(loaded.checked);
        loaded.modified = None;
    }
}
