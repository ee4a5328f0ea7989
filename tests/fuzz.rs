//! Property-based fuzzing of the parsers a client reaches (issue 6, item 11): Decimal and
//! Money, the DateTime and Date scalars, the document precheck, and the JWT front door.
//! Arbitrary and adversarial inputs must give a value or an error, never a panic; what
//! parses must round-trip. `PROPTEST_CASES=100000 cargo test --test fuzz` runs longer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_graphql::{ScalarType, Value};
use funnelgraph::auth::{mint_hs256, Role, Verifier};
use funnelgraph::domain::money::{Decimal, Money};
use funnelgraph::graphql::precheck::{check, DocumentLimits};
use funnelgraph::graphql::scalars;
use proptest::prelude::*;

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-fuzzing";

/// Strings built from the characters the parsers care about, so the fuzzer reaches deep
/// branches instead of failing on the first byte.
fn decimalish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[-+]?[0-9]{0,40}(\\.[0-9]{0,40})?[eE.,_ 0-9-]{0,3}").unwrap()
}

fn datetimeish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "[0-9+-]{0,6}-[0-9]{1,3}-[0-9]{1,3}[Tt ][0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn decimal_parse_never_panics_and_round_trips(text in prop_oneof![decimalish(), any::<String>()]) {
        if let Ok(d) = Decimal::parse(&text) {
            // What parses is exactly the number written: reparse its canonical form.
            let canonical = d.to_string();
            let again = Decimal::parse(&canonical).unwrap();
            prop_assert_eq!(again, d);
        }
        let _ = scalars::Decimal::parse(Value::String(text.clone()));
    }

    #[test]
    fn money_parse_never_panics_and_stays_in_range(text in prop_oneof![decimalish(), any::<String>()], cur in "[A-Z]{3}") {
        for currency in [cur.as_str(), "USD", "JPY", "KWD"] {
            if let Ok(m) = Money::parse(&text, currency, currency) {
                let printed = m.to_decimal_string(currency);
                prop_assert_eq!(Money::parse(&printed, currency, currency).unwrap(), m);
            }
        }
    }

    #[test]
    fn datetime_and_date_scalars_never_panic(text in prop_oneof![datetimeish(), any::<String>()], n in any::<i64>()) {
        if let Ok(t) = scalars::DateTime::parse(Value::String(text.clone())) {
            let printed = t.to_value();
            prop_assert_eq!(scalars::DateTime::parse(printed).unwrap(), t);
        }
        let _ = scalars::Date::parse(Value::String(text.chars().take(10).collect()));
        let _ = scalars::DateTime::parse(Value::from(n));
    }

    #[test]
    fn the_document_precheck_never_panics(text in prop_oneof![
        any::<String>(),
        proptest::string::string_regex("[{}\\[\\]()\"#a-z:.\\n ]{0,200}").unwrap(),
        proptest::string::string_regex("(query|fragment F[0-9] on Query|\\{|\\}|\\.\\.\\.F[0-9]|me|id| ){0,60}").unwrap(),
    ]) {
        let _ = check(&text, None, DocumentLimits::default());
    }

    #[test]
    fn the_jwt_front_door_never_panics(token in prop_oneof![
        any::<String>(),
        proptest::string::string_regex("[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,60}").unwrap(),
    ]) {
        let v = Verifier::new(Some(SECRET), None, None, Some("iss".into()), Some("aud".into())).unwrap();
        let _ = v.verify(&token);
    }

    #[test]
    fn a_valid_token_with_any_single_byte_changed_is_refused(position in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let v = Verifier::new(Some(SECRET), None, None, None, None).unwrap();
        let token = mint_hs256(SECRET, "user", Role::Analyst, 600, None, None).unwrap();
        let mut bytes = token.clone().into_bytes();
        let i = position.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let mutated = String::from_utf8_lossy(&bytes).to_string();
        // Base64url has spare bits in its last character: a change there can decode to the
        // same bytes and verify. Anything that still verifies must carry the same identity.
        if let Ok(caller) = v.verify(&mutated) {
            prop_assert_eq!(caller.sub, "user");
            prop_assert_eq!(caller.role, Role::Analyst);
        }
    }
}
