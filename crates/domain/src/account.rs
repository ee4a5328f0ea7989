//! Accounts (SPEC §8): which account a lead's email matches, the attribution mapping that
//! says whose touches a deal credits, the bound F of a repeat deal, and the instant an account
//! becomes marketing-qualified (MQA).

use chrono::{DateTime, Utc};

use super::scoring::{score, Profile, Rule};

/// Free-mail and consumer mailbox domains: a lead with one of these never matches an account
/// by its domain, and no account may take one as its domain (a company's domain names the
/// company; `gmail.com` names nobody). Compared with the whole host, lower-case.
pub const FREE_MAIL: &[&str] = &[
    "aol.com",
    "fastmail.com",
    "gmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "googlemail.com",
    "hey.com",
    "hotmail.co.uk",
    "hotmail.com",
    "hotmail.de",
    "hotmail.fr",
    "icloud.com",
    "live.com",
    "mac.com",
    "mail.com",
    "mail.ru",
    "me.com",
    "msn.com",
    "outlook.com",
    "pm.me",
    "proton.me",
    "protonmail.com",
    "qq.com",
    "t-online.de",
    "web.de",
    "yahoo.co.uk",
    "yahoo.com",
    "yahoo.de",
    "yahoo.fr",
    "yandex.com",
    "yandex.ru",
    "zoho.com",
];

/// Whether `domain` (lower-case) is a free-mail domain.
pub fn is_free_mail(domain: &str) -> bool {
    FREE_MAIL.binary_search(&domain).is_ok()
}

/// The host of an email address, lower-case and whole (`ann@EU.Acme.com` → `eu.acme.com`);
/// None without an `@` or with nothing after it.
pub fn email_domain(email: &str) -> Option<String> {
    let (_, host) = email.rsplit_once('@')?;
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The domain a lead's email matches accounts by: its host, unless it is free mail.
pub fn matching_domain(email: Option<&str>) -> Option<String> {
    email.and_then(email_domain).filter(|d| !is_free_mail(d))
}

/// Why an account's domain is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainError(pub String);

/// An account's domain as stored: lower-case, a host name (letters, digits, `-`, `.`, with a
/// dot, no empty label), never free mail.
pub fn check_domain(domain: &str) -> Result<String, DomainError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if d.len() > 253 || !d.contains('.') || !labels_ok {
        return Err(DomainError(format!(
            "\"{domain}\" is not a domain name (e.g. \"acme.com\")"
        )));
    }
    if is_free_mail(&d) {
        return Err(DomainError(format!(
            "\"{d}\" is a free-mail domain: it names no company, so no account may match by it"
        )));
    }
    Ok(d)
}

/// Whose touches an opportunity's OPPORTUNITY and WON conversions credit (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum Mapping {
    /// The opportunity's contacts (its primary contact among them).
    #[default]
    ContactRoles,
    /// Its primary contact only.
    PrimaryContact,
    /// Its contacts and every lead of its account, bounded below by the account's previous
    /// close (F); an opportunity without an account falls back to `ContactRoles`.
    Account,
}

impl Mapping {
    pub const ALL: [Mapping; 3] = [
        Mapping::ContactRoles,
        Mapping::PrimaryContact,
        Mapping::Account,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mapping::ContactRoles => "CONTACT_ROLES",
            Mapping::PrimaryContact => "PRIMARY_CONTACT",
            Mapping::Account => "ACCOUNT",
        }
    }

    pub fn parse(s: &str) -> Option<Mapping> {
        Mapping::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// F of SPEC §8: the latest close among the account's *other* opportunities closed at or
/// before `created_at` (any close: won or lost), None when there is none.
pub fn previous_close(
    created_at: DateTime<Utc>,
    others: impl IntoIterator<Item = Option<DateTime<Utc>>>,
) -> Option<DateTime<Utc>> {
    others
        .into_iter()
        .flatten()
        .filter(|closed| *closed <= created_at)
        .max()
}

/// The two MQA settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MqaSettings {
    pub min_contacts: u32,
    pub threshold: i64,
}

impl Default for MqaSettings {
    fn default() -> Self {
        MqaSettings {
            min_contacts: 2,
            threshold: 150,
        }
    }
}

/// One lead of an account as the MQA rule reads it.
#[derive(Debug, Clone)]
pub struct MqaLead {
    pub created_at: DateTime<Utc>,
    /// Its first reach of MQL (whatever happened after).
    pub mql_at: Option<DateTime<Utc>>,
    pub profile: Profile,
    /// Its touches as (time, kind), in time order.
    pub touches: Vec<(DateTime<Utc>, String)>,
}

/// The first instant t at which at least `min_contacts` of the account's leads had reached MQL
/// at or before t and the scores at t of its leads created at or before t (the rules applied
/// to their attributes and their touches at or before t) sum to at least `threshold`; or the
/// account's first opportunity's creation, when that is earlier (SPEC §8).
pub fn mqa_at(
    rules: &[Rule],
    settings: MqaSettings,
    leads: &[MqaLead],
    first_opportunity: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    // Every instant at which a count or a score can change, in order.
    let mut instants: Vec<(DateTime<Utc>, usize)> = Vec::new();
    for (i, l) in leads.iter().enumerate() {
        instants.push((l.created_at, i));
        instants.extend(l.mql_at.map(|t| (t, i)));
        instants.extend(l.touches.iter().map(|(t, _)| (*t, i)));
    }
    instants.sort_unstable();
    let mut scores: Vec<Option<i64>> = vec![None; leads.len()];
    let mut sum: i64 = 0;
    let mut found = None;
    for run in instants.chunk_by(|a, b| a.0 == b.0) {
        let t = run[0].0;
        if first_opportunity.is_some_and(|o| o <= t) {
            break;
        }
        let mut changed: Vec<usize> = run.iter().map(|(_, i)| *i).collect();
        changed.dedup();
        for i in changed {
            let l = &leads[i];
            if l.created_at > t {
                continue;
            }
            let kinds: Vec<&str> = l
                .touches
                .iter()
                .take_while(|(at, _)| *at <= t)
                .map(|(_, k)| k.as_str())
                .collect();
            let now = i64::from(score(rules, &l.profile, &kinds).0);
            sum += now - scores[i].unwrap_or(0);
            scores[i] = Some(now);
        }
        let qualified = leads
            .iter()
            .filter(|l| l.mql_at.is_some_and(|m| m <= t))
            .count();
        if qualified >= settings.min_contacts as usize && sum >= settings.threshold {
            found = Some(t);
            break;
        }
    }
    match (found, first_opportunity) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Kind;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn the_free_mail_list_is_sorted_for_its_binary_search() {
        let mut sorted = FREE_MAIL.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, FREE_MAIL);
        assert!(is_free_mail("gmail.com"));
        assert!(!is_free_mail("acme.com"));
    }

    #[test]
    fn the_domain_is_the_whole_host_lower_case() {
        assert_eq!(
            email_domain("Ann@EU.Acme.COM").as_deref(),
            Some("eu.acme.com")
        );
        assert_eq!(email_domain("ann@acme.com.").as_deref(), Some("acme.com"));
        assert_eq!(email_domain("ann@"), None);
        assert_eq!(email_domain("ann"), None);
        assert_eq!(matching_domain(Some("bob@GMail.com")), None);
        assert_eq!(
            matching_domain(Some("bob@acme.com")).as_deref(),
            Some("acme.com")
        );
        assert_eq!(check_domain(" Acme.COM ").unwrap(), "acme.com");
        assert!(check_domain("gmail.com")
            .unwrap_err()
            .0
            .contains("free-mail"));
        assert!(check_domain("acme").is_err());
        assert!(check_domain("ac_me.com").is_err());
        assert!(check_domain("%.com").is_err());
    }

    #[test]
    fn f_is_the_latest_close_at_or_before_the_creation() {
        let closes = [Some(at(1, 0)), Some(at(5, 0)), None, Some(at(9, 0))];
        assert_eq!(previous_close(at(5, 0), closes), Some(at(5, 0)));
        assert_eq!(previous_close(at(8, 0), closes), Some(at(5, 0)));
        assert_eq!(
            previous_close(at(1, 0) - chrono::Duration::seconds(1), closes),
            None
        );
    }

    fn visits(points: i32) -> Rule {
        Rule {
            id: 1,
            kind: Kind::Behavior,
            field: None,
            operator: None,
            value: None,
            touch_kind: Some("visit".into()),
            points,
            max_points: None,
        }
    }

    fn lead(
        created: DateTime<Utc>,
        mql: Option<DateTime<Utc>>,
        touches: &[DateTime<Utc>],
    ) -> MqaLead {
        MqaLead {
            created_at: created,
            mql_at: mql,
            profile: Profile::default(),
            touches: touches.iter().map(|t| (*t, "visit".to_string())).collect(),
        }
    }

    #[test]
    fn mqa_waits_for_the_second_qualified_contact_and_the_summed_score() {
        let rules = [visits(50)];
        let settings = MqaSettings::default();
        // A: two visits (100) and MQL on day 2. B: one visit on day 3 (sum 150), MQL on day 4.
        let a = lead(at(1, 0), Some(at(2, 0)), &[at(1, 1), at(2, 0)]);
        let b = lead(at(3, 0), Some(at(4, 0)), &[at(3, 1)]);
        assert_eq!(
            mqa_at(&rules, settings, std::slice::from_ref(&a), None),
            None
        );
        assert_eq!(
            mqa_at(&rules, settings, &[a.clone(), b.clone()], None),
            Some(at(4, 0))
        );
        // Scores too low: 100 + 50 < 200.
        let high = MqaSettings {
            min_contacts: 2,
            threshold: 200,
        };
        assert_eq!(mqa_at(&rules, high, &[a.clone(), b.clone()], None), None);
        // A later visit of B lifts the sum to 200 on day 6.
        let b2 = lead(at(3, 0), Some(at(4, 0)), &[at(3, 1), at(6, 0)]);
        assert_eq!(mqa_at(&rules, high, &[a.clone(), b2], None), Some(at(6, 0)));
        // An opportunity created earlier makes the account MQA then.
        assert_eq!(
            mqa_at(&rules, settings, &[a.clone(), b.clone()], Some(at(3, 5))),
            Some(at(3, 5))
        );
        assert_eq!(
            mqa_at(&rules, settings, &[a, b], Some(at(9, 0))),
            Some(at(4, 0))
        );
    }

    #[test]
    fn a_touch_before_the_lead_exists_counts_from_its_creation_only() {
        let rules = [visits(100)];
        let settings = MqaSettings {
            min_contacts: 1,
            threshold: 100,
        };
        let a = lead(at(5, 0), Some(at(6, 0)), &[at(1, 0)]);
        assert_eq!(mqa_at(&rules, settings, &[a], None), Some(at(6, 0)));
    }

    #[test]
    fn mapping_names_round_trip() {
        for m in Mapping::ALL {
            assert_eq!(Mapping::parse(m.as_str()), Some(m));
        }
        assert_eq!(Mapping::default(), Mapping::ContactRoles);
    }
}
