//! Transparent lead scoring (SPEC §3): rules are data. An ATTRIBUTE rule matches a lead field
//! or attribute once; a BEHAVIOR rule adds its points per touchpoint of a kind, up to
//! `max_points`. A lead's score is the sum, and the breakdown says which rule gave what.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Attribute,
    Behavior,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    Contains,
    Gte,
    Lte,
    In,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "EQUALS",
            Operator::Contains => "CONTAINS",
            Operator::Gte => "GTE",
            Operator::Lte => "LTE",
            Operator::In => "IN",
        }
    }

    pub fn parse(s: &str) -> Option<Operator> {
        [
            Operator::Equals,
            Operator::Contains,
            Operator::Gte,
            Operator::Lte,
            Operator::In,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub kind: Kind,
    pub field: Option<String>,
    pub operator: Option<Operator>,
    pub value: Option<String>,
    pub touch_kind: Option<String>,
    pub points: i32,
    pub max_points: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

/// Checks that a rule can be evaluated: ATTRIBUTE needs a field, an operator and a value
/// (numeric operators a number); BEHAVIOR needs a touch kind.
pub fn validate(rule: &Rule) -> Result<(), RuleError> {
    match rule.kind {
        Kind::Attribute => {
            let field = rule.field.as_deref().unwrap_or("");
            if field.trim().is_empty() {
                return Err(RuleError("an ATTRIBUTE rule needs a field".into()));
            }
            let Some(op) = rule.operator else {
                return Err(RuleError("an ATTRIBUTE rule needs an operator".into()));
            };
            let Some(value) = rule.value.as_deref().filter(|v| !v.trim().is_empty()) else {
                return Err(RuleError(format!(
                    "{} needs a value to compare with",
                    op.as_str()
                )));
            };
            if matches!(op, Operator::Gte | Operator::Lte) && value.trim().parse::<f64>().is_err() {
                return Err(RuleError(format!(
                    "{} compares numbers; \"{value}\" is not one",
                    op.as_str()
                )));
            }
        }
        Kind::Behavior => {
            if rule
                .touch_kind
                .as_deref()
                .is_none_or(|k| k.trim().is_empty())
            {
                return Err(RuleError("a BEHAVIOR rule needs a touchKind".into()));
            }
            if rule.max_points.is_some_and(|m| m < 0) {
                return Err(RuleError("maxPoints must not be negative".into()));
            }
        }
    }
    Ok(())
}

/// What scoring reads of a lead: its fields and attributes by name.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub fields: HashMap<String, String>,
}

fn matches(op: Operator, actual: &str, expected: &str) -> bool {
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    match op {
        Operator::Equals => actual.trim().eq_ignore_ascii_case(expected.trim()),
        Operator::Contains => actual.to_lowercase().contains(&expected.to_lowercase()),
        // A numeric comparison on a non-numeric value never matches and never errors.
        Operator::Gte => matches!((number(actual), number(expected)), (Some(a), Some(e)) if a >= e),
        Operator::Lte => matches!((number(actual), number(expected)), (Some(a), Some(e)) if a <= e),
        Operator::In => expected
            .split(',')
            .any(|option| option.trim().eq_ignore_ascii_case(actual.trim())),
    }
}

/// The points one rule gives a lead with `profile` and touches of `kinds` (in time order).
pub fn points(rule: &Rule, profile: &Profile, kinds: &[&str]) -> i32 {
    match rule.kind {
        Kind::Attribute => {
            let (Some(field), Some(op), Some(value)) = (&rule.field, rule.operator, &rule.value)
            else {
                return 0;
            };
            match profile.fields.get(field) {
                Some(actual) if matches(op, actual, value) => rule.points,
                _ => 0,
            }
        }
        Kind::Behavior => behavior_points(
            rule,
            kinds
                .iter()
                .filter(|k| Some(**k) == rule.touch_kind.as_deref())
                .count(),
        ),
    }
}

fn behavior_points(rule: &Rule, count: usize) -> i32 {
    let raw = i64::from(rule.points) * count as i64;
    let capped = match rule.max_points {
        Some(max) if rule.points >= 0 => raw.min(i64::from(max)),
        _ => raw,
    };
    capped.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Each rule's contribution (non-zero ones) and the total score.
pub fn score(rules: &[Rule], profile: &Profile, kinds: &[&str]) -> (i32, Vec<(i64, i32)>) {
    let breakdown: Vec<(i64, i32)> = rules
        .iter()
        .map(|r| (r.id, points(r, profile, kinds)))
        .filter(|(_, p)| *p != 0)
        .collect();
    let total = breakdown.iter().map(|(_, p)| i64::from(*p)).sum::<i64>();
    (
        total.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        breakdown,
    )
}

/// The instant a lead's score first reached `threshold`, replaying its facts in time order:
/// its attributes count from `created_at`, each touch from when it happened.
pub fn reached_at(
    rules: &[Rule],
    threshold: i32,
    profile: &Profile,
    created_at: DateTime<Utc>,
    touches: &[(DateTime<Utc>, &str)],
) -> Option<DateTime<Utc>> {
    if score(rules, profile, &[]).0 >= threshold {
        return Some(created_at);
    }
    let mut kinds: Vec<&str> = Vec::new();
    for (at, kind) in touches {
        kinds.push(kind);
        if score(rules, profile, &kinds).0 >= threshold {
            return Some((*at).max(created_at));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn attr(id: i64, field: &str, op: Operator, value: &str, points: i32) -> Rule {
        Rule {
            id,
            kind: Kind::Attribute,
            field: Some(field.into()),
            operator: Some(op),
            value: Some(value.into()),
            touch_kind: None,
            points,
            max_points: None,
        }
    }

    fn behavior(id: i64, kind: &str, points: i32, max: Option<i32>) -> Rule {
        Rule {
            id,
            kind: Kind::Behavior,
            field: None,
            operator: None,
            value: None,
            touch_kind: Some(kind.into()),
            points,
            max_points: max,
        }
    }

    fn profile(pairs: &[(&str, &str)]) -> Profile {
        Profile {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn attribute_operators() {
        let p = profile(&[
            ("industry", "Retail"),
            ("company_size", "250"),
            ("title", "VP Marketing"),
        ]);
        assert_eq!(
            points(
                &attr(1, "industry", Operator::Equals, "retail", 10),
                &p,
                &[]
            ),
            10
        );
        assert_eq!(
            points(
                &attr(1, "title", Operator::Contains, "marketing", 5),
                &p,
                &[]
            ),
            5
        );
        assert_eq!(
            points(&attr(1, "company_size", Operator::Gte, "200", 7), &p, &[]),
            7
        );
        assert_eq!(
            points(&attr(1, "company_size", Operator::Lte, "200", 7), &p, &[]),
            0
        );
        assert_eq!(
            points(
                &attr(1, "industry", Operator::In, "software, retail", 3),
                &p,
                &[]
            ),
            3
        );
        assert_eq!(
            points(&attr(1, "missing", Operator::Equals, "x", 3), &p, &[]),
            0
        );
    }

    #[test]
    fn numeric_comparison_on_text_never_matches() {
        let p = profile(&[("company_size", "large")]);
        assert_eq!(
            points(&attr(1, "company_size", Operator::Gte, "10", 7), &p, &[]),
            0
        );
    }

    #[test]
    fn behavior_points_stop_at_max() {
        let r = behavior(1, "email_click", 10, Some(25));
        assert_eq!(
            points(
                &r,
                &Profile::default(),
                &["email_click", "ad_click", "email_click"]
            ),
            20
        );
        assert_eq!(points(&r, &Profile::default(), &["email_click"; 5]), 25);
    }

    #[test]
    fn malformed_rules_are_refused() {
        assert!(validate(&attr(1, "x", Operator::Gte, "", 1)).is_err());
        assert!(validate(&attr(1, "x", Operator::Gte, "abc", 1)).is_err());
        assert!(validate(&Rule {
            operator: None,
            ..attr(1, "x", Operator::Equals, "a", 1)
        })
        .is_err());
        assert!(validate(&Rule {
            touch_kind: None,
            ..behavior(1, "k", 1, None)
        })
        .is_err());
        assert!(validate(&attr(1, "x", Operator::Gte, "10", 1)).is_ok());
    }

    #[test]
    fn the_threshold_is_reached_at_the_fact_that_crossed_it() {
        let rules = vec![
            attr(1, "industry", Operator::Equals, "retail", 40),
            behavior(2, "webinar_attended", 30, None),
        ];
        let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let t = |d: u32| Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap();
        let p = profile(&[("industry", "retail")]);
        let touches = [
            (t(2), "webinar_attended"),
            (t(3), "ad_click"),
            (t(4), "webinar_attended"),
        ];
        assert_eq!(reached_at(&rules, 100, &p, created, &touches), Some(t(4)));
        assert_eq!(reached_at(&rules, 40, &p, created, &touches), Some(created));
        assert_eq!(reached_at(&rules, 200, &p, created, &touches), None);
    }

    proptest! {
        #[test]
        fn the_breakdown_always_sums_to_the_score(
            points_list in prop::collection::vec((-50i32..50, prop::option::of(0i32..100)), 0..6),
            kinds in prop::collection::vec(0usize..3, 0..20),
            size in 0u32..1000,
        ) {
            let names = ["a", "b", "c"];
            let mut rules: Vec<Rule> = points_list.iter().enumerate().map(|(i, (p, max))| behavior(i as i64, names[i % 3], *p, *max)).collect();
            rules.push(attr(99, "company_size", Operator::Gte, "500", 17));
            let touched: Vec<&str> = kinds.iter().map(|k| names[*k]).collect();
            let p = profile(&[("company_size", &size.to_string())]);
            let (total, breakdown) = score(&rules, &p, &touched);
            prop_assert_eq!(i64::from(total), breakdown.iter().map(|(_, x)| i64::from(*x)).sum::<i64>());
        }
    }
}
