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
