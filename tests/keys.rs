//! Public-key tokens (RS256, ES256, EdDSA) and the attacks RFC 8725 warns of. The keys in
//! tests/fixtures/keys were generated for these tests only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use funnelgraph::auth::{Claims, Role, Verifier};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

fn key(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn claims(exp_offset: i64) -> Claims {
    Claims {
        sub: "u1".into(),
        role: "ANALYST".into(),
        exp: chrono::Utc::now().timestamp() + exp_offset,
        iss: Some("funnelgraph-tests".into()),
        aud: Some("funnelgraph".into()),
        iat: None,
    }
}

fn verifier(public: &str) -> Verifier {
    let pem = key(public);
    Verifier::new(
        None,
        Some((public, &pem)),
        None,
        Some("funnelgraph-tests".into()),
        Some("funnelgraph".into()),
    )
    .unwrap()
}

#[test]
fn rs256_es256_and_eddsa_tokens_verify_against_their_public_key() {
    let cases = [
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&key("rsa-private.pem")).unwrap(),
            "rsa-public.pem",
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&key("ec-private-pk8.pem")).unwrap(),
            "ec-public.pem",
        ),
        (
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&key("ed-private.pem")).unwrap(),
            "ed-public.pem",
        ),
    ];
    for (alg, signing, public) in cases {
        let token = encode(&Header::new(alg), &claims(600), &signing).unwrap();
        let caller = verifier(public).verify(&token).unwrap();
        assert_eq!(
            (caller.sub.as_str(), caller.role),
            ("u1", Role::Analyst),
            "{alg:?}"
        );
        // The same token is refused by a server holding another algorithm's key.
        let other = if public == "rsa-public.pem" {
            "ec-public.pem"
        } else {
            "rsa-public.pem"
        };
        assert!(
            verifier(other).verify(&token).is_err(),
            "{alg:?} against {other}"
        );
    }
}

#[test]
fn an_hs256_token_signed_with_the_public_key_is_refused() {
    // Key confusion: the attacker signs HS256 with the (public) RSA PEM as the HMAC secret.
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims(600),
        &EncodingKey::from_secret(&key("rsa-public.pem")),
    )
    .unwrap();
    assert!(verifier("rsa-public.pem").verify(&token).is_err());
}

#[test]
fn issuer_and_audience_are_enforced_when_configured() {
    let signing = EncodingKey::from_ed_pem(&key("ed-private.pem")).unwrap();
    let v = verifier("ed-public.pem");
    let mut wrong_iss = claims(600);
    wrong_iss.iss = Some("someone-else".into());
    let mut no_aud = claims(600);
    no_aud.aud = None;
    for c in [wrong_iss, no_aud, claims(-3600)] {
        let token = encode(&Header::new(Algorithm::EdDSA), &c, &signing).unwrap();
        assert!(v.verify(&token).is_err());
    }
}

#[test]
fn a_server_without_any_key_refuses_to_build_a_verifier() {
    assert!(Verifier::new(None, None, None, None, None).is_err());
    let config = funnelgraph::config::Config::from_lookup(|_| None).unwrap();
    let err = funnelgraph::cli::verifier(&config, None)
        .err()
        .expect("no key configured");
    assert!(err.to_string().contains("no JWT key"), "{err}");
}

// ---- RFC 8725 attacks on the front door (issue 6) ----

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const SECRET: &[u8] = b"a-secret-that-is-long-enough-for-hs256-tests";

fn hs_verifier(issuer: Option<&str>, audience: Option<&str>) -> Verifier {
    Verifier::new(
        Some(SECRET),
        None,
        None,
        issuer.map(str::to_string),
        audience.map(str::to_string),
    )
    .unwrap()
}

fn hs_token(claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn refusal(v: &Verifier, token: &str) -> String {
    match v.verify(token) {
        Ok(caller) => panic!("accepted as {caller:?}: {token}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_forged_or_stale_token_is_refused_with_a_reason() {
    use serde_json::json;
    let v = hs_verifier(None, None);
    let good = json!({ "sub": "u1", "role": "ANALYST", "exp": now() + 600 });
    assert!(
        v.verify(&hs_token(&good)).is_ok(),
        "the control token verifies"
    );

    let payload = b64(good.to_string().as_bytes());
    let alg_none = format!("{}.{payload}.", b64(br#"{"alg":"none","typ":"JWT"}"#));
    assert!(
        refusal(&v, &alg_none).contains("malformed")
            || refusal(&v, &alg_none).contains("algorithm")
    );

    let expired = json!({ "sub": "u1", "role": "ANALYST", "exp": now() - 31 - 60 });
    assert_eq!(
        refusal(&v, &hs_token(&expired)),
        "invalid token: token expired"
    );
    // Inside the 30 s leeway an expired token still passes (clock skew).
    let skewed = json!({ "sub": "u1", "role": "ANALYST", "exp": now() - 5 });
    assert!(v.verify(&hs_token(&skewed)).is_ok());

    let not_yet = json!({ "sub": "u1", "role": "ANALYST", "exp": now() + 600, "nbf": now() + 300 });
    assert_eq!(
        refusal(&v, &hs_token(&not_yet)),
        "invalid token: token not valid yet (nbf)"
    );

    let exp_string = json!({ "sub": "u1", "role": "ANALYST", "exp": (now() + 600).to_string() });
    // A string `exp` does not count as the required numeric claim.
    assert_eq!(
        refusal(&v, &hs_token(&exp_string)),
        "invalid token: a required claim is missing"
    );
    let nbf_string = json!({ "sub": "u1", "role": "ANALYST", "exp": now() + 600, "nbf": "0" });
    assert_eq!(
        refusal(&v, &hs_token(&nbf_string)),
        "invalid token: exp and nbf must be numbers"
    );

    let no_exp = json!({ "sub": "u1", "role": "ANALYST" });
    assert_eq!(
        refusal(&v, &hs_token(&no_exp)),
        "invalid token: a required claim is missing"
    );

    let unknown_role = json!({ "sub": "u1", "role": "SUPERUSER", "exp": now() + 600 });
    assert_eq!(
        refusal(&v, &hs_token(&unknown_role)),
        "invalid token: unknown role"
    );
    let lower_role = json!({ "sub": "u1", "role": "admin", "exp": now() + 600 });
    assert_eq!(
        refusal(&v, &hs_token(&lower_role)),
        "invalid token: unknown role"
    );

    // Tampering: the payload of an ANALYST token swapped for an ADMIN one, signature kept.
    let token = hs_token(&good);
    let parts: Vec<&str> = token.split('.').collect();
    let admin = json!({ "sub": "u1", "role": "ADMIN", "exp": now() + 600 });
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(admin.to_string().as_bytes()),
        parts[2]
    );
    assert_eq!(refusal(&v, &tampered), "invalid token: bad signature");
    // A signature of another secret.
    let other = encode(
        &Header::new(Algorithm::HS256),
        &good,
        &EncodingKey::from_secret(b"another-secret-another-secret-12"),
    )
    .unwrap();
    assert_eq!(refusal(&v, &other), "invalid token: bad signature");
    // HS384 is not the configured algorithm even with the right secret.
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &good,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert!(refusal(&v, &hs384).contains("algorithm"));
    for garbage in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30."] {
        assert!(v.verify(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn issuer_and_audience_are_required_and_exact_when_configured() {
    use serde_json::json;
    let v = hs_verifier(Some("https://idp.example"), Some("funnelgraph"));
    let base = |iss: Option<&str>, aud: Option<serde_json::Value>| {
        let mut c = json!({ "sub": "u1", "role": "ANALYST", "exp": now() + 600 });
        if let Some(iss) = iss {
            c["iss"] = json!(iss);
        }
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        hs_token(&c)
    };
    assert!(v
        .verify(&base(
            Some("https://idp.example"),
            Some(json!("funnelgraph"))
        ))
        .is_ok());
    assert!(v
        .verify(&base(
            Some("https://idp.example"),
            Some(json!(["other", "funnelgraph"]))
        ))
        .is_ok());
    assert_eq!(
        refusal(&v, &base(None, Some(json!("funnelgraph")))),
        "invalid token: a required claim is missing"
    );
    assert_eq!(
        refusal(
            &v,
            &base(Some("https://evil.example"), Some(json!("funnelgraph")))
        ),
        "invalid token: wrong issuer"
    );
    assert_eq!(
        refusal(&v, &base(Some("https://idp.example"), None)),
        "invalid token: a required claim is missing"
    );
    assert_eq!(
        refusal(&v, &base(Some("https://idp.example"), Some(json!("other")))),
        "invalid token: wrong audience"
    );
}

fn jwks_file(name: &str) -> (std::path::PathBuf, funnelgraph::auth::jwks::Jwks) {
    let path = std::env::temp_dir().join(format!(
        "funnelgraph-jwks-{}-{name}.json",
        std::process::id()
    ));
    std::fs::copy(
        format!(
            "{}/tests/fixtures/keys/jwks-before-rotation.json",
            env!("CARGO_MANIFEST_DIR")
        ),
        &path,
    )
    .unwrap();
    let set = funnelgraph::auth::jwks::Jwks::load(path.to_str().unwrap()).unwrap();
    (path, set)
}

fn signed(alg: Algorithm, kid: Option<&str>, private: &str) -> String {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&key(private)).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&key(private)).unwrap(),
        _ => EncodingKey::from_ed_pem(&key(private)).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, &claims(600), &key).unwrap()
}

#[test]
fn a_jwks_picks_the_key_by_kid_and_never_falls_back() {
    let (path, set) = jwks_file("kid");
    let v = Verifier::new(
        None,
        None,
        Some(set),
        Some("funnelgraph-tests".into()),
        Some("funnelgraph".into()),
    )
    .unwrap();
    assert!(v
        .verify(&signed(
            Algorithm::RS256,
            Some("rsa-2026"),
            "rsa-private.pem"
        ))
        .is_ok());
    assert!(v
        .verify(&signed(
            Algorithm::ES256,
            Some("ec-2026"),
            "ec-private-pk8.pem"
        ))
        .is_ok());
    // No kid: refused, although the first key of the set would verify it.
    assert_eq!(
        refusal(&v, &signed(Algorithm::RS256, None, "rsa-private.pem")),
        "invalid token: token has no kid; this server picks its key by kid"
    );
    assert_eq!(
        refusal(
            &v,
            &signed(Algorithm::RS256, Some("rsa-2019"), "rsa-private.pem")
        ),
        "invalid token: unknown key id"
    );
    // The right kid but the wrong algorithm for that key, or another key's signature.
    assert!(refusal(
        &v,
        &signed(Algorithm::ES256, Some("rsa-2026"), "ec-private-pk8.pem")
    )
    .contains("algorithm"));
    // A signature that is not the key's: the ES256 token's signature on the RSA kid's header.
    let es = signed(Algorithm::ES256, Some("ec-2026"), "ec-private-pk8.pem");
    let rs = signed(Algorithm::RS256, Some("rsa-2026"), "rsa-private.pem");
    let spliced = format!(
        "{}.{}",
        rs.rsplit_once('.').unwrap().0,
        es.rsplit_once('.').unwrap().1
    );
    assert_eq!(refusal(&v, &spliced), "invalid token: bad signature");
    std::fs::remove_file(path).ok();
}

#[test]
fn rotation_is_adding_a_key_to_the_file() {
    let (path, set) = jwks_file("rotation");
    let v = Verifier::new(
        None,
        None,
        Some(set.clone()),
        Some("funnelgraph-tests".into()),
        Some("funnelgraph".into()),
    )
    .unwrap();
    let new_key_token = signed(Algorithm::EdDSA, Some("ed-2027"), "ed-private.pem");
    let old_key_token = signed(Algorithm::RS256, Some("rsa-2026"), "rsa-private.pem");
    set.expire_check();
    assert_eq!(refusal(&v, &new_key_token), "invalid token: unknown key id");
    std::fs::copy(
        format!(
            "{}/tests/fixtures/keys/jwks-after-rotation.json",
            env!("CARGO_MANIFEST_DIR")
        ),
        &path,
    )
    .unwrap();
    set.expire_check();
    assert!(
        v.verify(&new_key_token).is_ok(),
        "the added key verifies without a restart"
    );
    assert!(
        v.verify(&old_key_token).is_ok(),
        "the old key still verifies"
    );
    // A broken file keeps the keys the server has.
    std::fs::write(&path, "{ not json").unwrap();
    set.expire_check();
    assert!(v.verify(&old_key_token).is_ok());
    std::fs::remove_file(path).ok();
}

#[test]
fn a_jwks_with_a_symmetric_key_or_without_kids_is_refused_at_startup() {
    let path =
        std::env::temp_dir().join(format!("funnelgraph-jwks-{}-bad.json", std::process::id()));
    for text in [
        r#"{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}"#,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        r#"{"keys":[]}"#,
        "not json",
    ] {
        std::fs::write(&path, text).unwrap();
        assert!(
            funnelgraph::auth::jwks::Jwks::load(path.to_str().unwrap()).is_err(),
            "{text}"
        );
    }
    std::fs::remove_file(path).ok();
}

#[test]
fn a_remembered_token_is_used_only_while_fresh_and_unexpired() {
    use funnelgraph::auth::{Caller, TokenCache};
    use std::time::{Duration, Instant};
    let caller = Caller {
        sub: "u1".into(),
        role: Role::Analyst,
    };
    let cache = TokenCache::new(Duration::from_secs(60));
    let (t0, at) = (1_000_000, Instant::now());
    cache.put("tok", caller.clone(), t0 + 100, at);
    assert_eq!(cache.get("tok", t0, at), Some(caller.clone()));
    assert_eq!(cache.get("other", t0, at), None, "only the exact text");
    // Past exp + the 30 s leeway, as verification would say.
    assert_eq!(cache.get("tok", t0 + 130, at), Some(caller.clone()));
    assert_eq!(cache.get("tok", t0 + 131, at), None);
    // Older than the time-to-live (a key dropped from a JWKS stops its tokens then).
    cache.put("tok", caller.clone(), t0 + 10_000, at);
    assert_eq!(
        cache.get("tok", t0, at + Duration::from_secs(59)),
        Some(caller.clone())
    );
    assert_eq!(cache.get("tok", t0, at + Duration::from_secs(60)), None);
    // A zero time-to-live remembers nothing.
    let off = TokenCache::new(Duration::ZERO);
    off.put("tok", caller, t0 + 100, at);
    assert_eq!(off.get("tok", t0, at), None);
}

#[test]
fn a_cached_verifier_still_refuses_what_it_never_verified() {
    use serde_json::json;
    let v = hs_verifier(None, None).with_cache(std::time::Duration::from_secs(60));
    let good = hs_token(&json!({ "sub": "u1", "role": "ANALYST", "exp": now() + 600 }));
    let first = v.verify_cached(&good).unwrap();
    assert_eq!(v.verify_cached(&good).unwrap(), first);
    assert_eq!(first.sub, "u1");
    // The same claims with another signature, and another role under the good signature.
    let (head_payload, signature) = good.rsplit_once('.').unwrap();
    let flipped: String = signature.chars().rev().collect();
    assert!(v
        .verify_cached(&format!("{head_payload}.{flipped}"))
        .is_err());
    let payload = b64(json!({ "sub": "u1", "role": "ADMIN", "exp": now() + 600 })
        .to_string()
        .as_bytes());
    let head = head_payload.split('.').next().unwrap();
    let err = v
        .verify_cached(&format!("{head}.{payload}.{signature}"))
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid token: bad signature");
    // A refused token is not remembered: refused again.
    assert!(v
        .verify_cached(&format!("{head}.{payload}.{signature}"))
        .is_err());
}
