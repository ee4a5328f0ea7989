//! A realistic demo company, loaded through the same use cases as the CRM sync: campaigns
//! across channels with odd-cent costs, a few hundred leads with journeys through every
//! stage (skips, recycles, disqualifications), multi-contact deals won and lost, bookings and
//! a refund. Deterministic: the same data every time.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use crate::auth::Role;
use crate::db::Db;
use crate::domain::currency::Currency;
use crate::domain::money::Money;
use crate::domain::stage::LeadStage;
use crate::generate::Fx;
use crate::rng::Rng;
use crate::service::{self, AppResult, Ctx};

/// The demo's people that get a printed dev token, one per role.
pub const TOKEN_USERS: [(&str, Role); 7] = [
    ("admin", Role::Admin),
    ("finance", Role::Finance),
    ("mara", Role::MarketingManager),
    ("mark", Role::Marketer),
    ("sam", Role::SalesRep),
    ("ana", Role::Analyst),
    ("crm-sync", Role::Integration),
];

const USERS: [(&str, &str, Role); 11] = [
    ("admin", "Ada Admin", Role::Admin),
    ("finance", "Fin Ance", Role::Finance),
    ("mara", "Mara Manager", Role::MarketingManager),
    ("mark", "Mark Eter", Role::Marketer),
    ("mia", "Mia Campaigns", Role::Marketer),
    ("max", "Max Events", Role::Marketer),
    ("sam", "Sam Seller", Role::SalesRep),
    ("sue", "Sue Closer", Role::SalesRep),
    ("sid", "Sid Hunter", Role::SalesRep),
    ("ana", "Ana Lyst", Role::Analyst),
    ("crm-sync", "CRM Sync", Role::Integration),
];

/// (externalId, name, channel, owner, monthly cost in cents)
const CAMPAIGNS: [(&str, &str, &str, &str, i64); 8] = [
    (
        "c-email-nurture",
        "Spring nurture emails",
        "email",
        "mark",
        61_237,
    ),
    (
        "c-search-brand",
        "Brand search",
        "paid_search",
        "mia",
        412_519,
    ),
    (
        "c-webinar-roi",
        "Webinar: proving marketing ROI",
        "webinar",
        "mark",
        180_003,
    ),
    (
        "c-event-summit",
        "Revenue Summit booth",
        "event",
        "max",
        955_001,
    ),
    (
        "c-social-ads",
        "LinkedIn ads",
        "paid_social",
        "mia",
        300_099,
    ),
    (
        "c-ebook-funnel",
        "E-book: the shared funnel",
        "content",
        "max",
        72_341,
    ),
    (
        "c-search-generic",
        "Generic search",
        "paid_search",
        "mark",
        233_317,
    ),
    (
        "c-partner-coop",
        "Partner co-marketing",
        "partner",
        "max",
        120_011,
    ),
];

const TOUCH_KINDS: [&str; 6] = [
    "form_fill",
    "email_click",
    "webinar_attended",
    "ad_click",
    "event_visit",
    "content_download",
];
const INDUSTRIES: [&str; 5] = [
    "software",
    "retail",
    "finance",
    "healthcare",
    "manufacturing",
];
const TITLES: [&str; 6] = [
    "CMO",
    "VP Marketing",
    "Marketing Ops",
    "CFO",
    "Head of Sales",
    "Analyst",
];
const SALES: [&str; 3] = ["sam", "sue", "sid"];

/// The demo's accounts: (name, domain, segment, industry). Five of every six leads work at one
/// of them (their email has its domain); the sixth writes from a free-mail address.
const ACCOUNTS: [(&str, &str, &str, &str); 12] = [
    (
        "Northwind Traders",
        "northwind.example",
        "ENTERPRISE",
        "retail",
    ),
    ("Globex", "globex.example", "ENTERPRISE", "manufacturing"),
    ("Initech", "initech.example", "MID_MARKET", "software"),
    (
        "Umbrella Health",
        "umbrella.example",
        "ENTERPRISE",
        "health",
    ),
    ("Hooli", "hooli.example", "MID_MARKET", "software"),
    (
        "Vandelay Industries",
        "vandelay.example",
        "SMB",
        "manufacturing",
    ),
    ("Soylent Foods", "soylent.example", "MID_MARKET", "retail"),
    ("Stark Finance", "stark.example", "ENTERPRISE", "finance"),
    ("Pied Piper", "piedpiper.example", "SMB", "software"),
    ("Wonka Confections", "wonka.example", "SMB", "retail"),
    ("Tyrell Systems", "tyrell.example", "MID_MARKET", "software"),
    ("Oscorp Bank", "oscorp.example", "SMB", "finance"),
];

/// The account of demo lead `n` (None: a free-mail lead), without drawing from the random
/// stream (the rest of the demo stays as it was).
fn account_of_lead(n: usize) -> Option<usize> {
    (n % 6 != 0).then_some((n * 7) % ACCOUNTS.len())
}

/// The currency demo deal `n` is booked in (None: the reporting currency): three in eight are
/// in EUR, GBP or JPY (SPEC §9), without drawing from the random stream.
fn deal_currency(fx: &Fx, n: usize) -> Option<&Currency> {
    match n % 8 {
        5..=7 => fx.foreign.get(n % 8 - 5),
        _ => None,
    }
}

/// `cents` (a USD-sized figure) as written in `currency`, or in the reporting one.
fn written(fx: &Fx, currency: Option<&Currency>, cents: i64) -> (String, String) {
    match currency {
        Some(c) => money(Fx::original_of(c, cents), c.code),
        None => money(cents, &fx.reporting),
    }
}

fn money(cents: i64, currency: &str) -> (String, String) {
    (
        Money(cents).to_decimal_string(currency),
        currency.to_string(),
    )
}

/// Loads the demo unless the database already has campaigns.
pub async fn load_if_empty(db: &Db, currency: &str) -> AppResult<String> {
    let db2 = db.clone();
    let existing = db2
        .run(|conn| -> AppResult<i64> {
            Ok(crate::repo::campaigns::count(conn, &Default::default())?)
        })
        .await?;
    if existing > 0 {
        return Ok(format!(
            "database already holds {existing} campaigns; demo data not loaded again"
        ));
    }
    load(db, currency).await
}

/// Who loads the demo: an ADMIN, since it writes pay plans and the lead definition as well
/// as what the CRM sync would.
pub fn demo_caller() -> crate::auth::Caller {
    crate::auth::Caller {
        sub: "demo-loader".into(),
        role: Role::Admin,
    }
}

/// The demo's people, monthly exchange rates, and its campaigns with a monthly cost of odd
/// cents for ten months (one campaign in three spends in another currency).
async fn people_and_campaigns(ctx: &Ctx, rng: &mut Rng, fx: &Fx) -> AppResult<()> {
    let currency = fx.reporting.as_str();
    for (ext, name, role) in USERS {
        service::users::upsert(
            ctx,
            service::users::UserInput {
                external_id: ext.into(),
                name: name.into(),
                email: Some(format!("{ext}@demo.funnelgraph.test")),
                role,
            },
        )
        .await?;
    }
    for (code, day, rate) in &fx.rows {
        service::currency::upsert_rate(
            ctx,
            service::currency::RateInput {
                currency: code.clone(),
                rate: rate.to_string(),
                effective_from: *day,
            },
        )
        .await?;
    }
    for (i, &(ext, name, channel, owner, monthly)) in CAMPAIGNS.iter().enumerate() {
        let spends_in = (i % 3 == 2).then(|| &fx.foreign[(i / 3) % fx.foreign.len()]);
        service::campaigns::upsert(
            ctx,
            service::campaigns::CampaignInput {
                external_id: ext.into(),
                name: name.into(),
                channel: channel.into(),
                owner_external_id: Some(owner.into()),
                starts_on: NaiveDate::from_ymd_opt(2026, 1, 1),
                ends_on: NaiveDate::from_ymd_opt(2026, 12, 31),
                budget: Some(money(monthly * 12 + 99, currency)),
            },
        )
        .await?;
        for month in 1..=10u32 {
            let day = NaiveDate::from_ymd_opt(2026, month, 28).unwrap_or_default();
            let wobble = rng.below(20_000) as i64 - 10_000;
            service::campaigns::record_cost(
                ctx,
                service::campaigns::CostInput {
                    external_id: format!("{ext}-cost-2026-{month:02}"),
                    campaign_external_id: ext.into(),
                    amount: written(fx, spends_in, monthly + wobble),
                    incurred_on: day,
                },
            )
            .await?;
        }
    }
    for (i, (name, domain, segment, industry)) in ACCOUNTS.iter().enumerate() {
        service::accounts::upsert(
            ctx,
            service::accounts::AccountInput {
                external_id: format!("ACC-{:03}", i + 1),
                name: name.to_string(),
                domain: Some(domain.to_string()),
                owner_external_id: Some(SALES[i % SALES.len()].into()),
                attributes: Some(vec![
                    ("industry".into(), industry.to_string()),
                    ("segment".into(), segment.to_string()),
                ]),
            },
        )
        .await?;
    }
    Ok(())
}

pub async fn load(db: &Db, currency: &str) -> AppResult<String> {
    let ctx = Ctx::for_caller(
        db.clone(),
        demo_caller(),
        currency.to_string(),
        Default::default(),
    )
    .await?;
    let mut rng = Rng(0x5EED_F00D_CAFE_1234);
    let fx = Fx::new(currency)?;
    people_and_campaigns(&ctx, &mut rng, &fx).await?;
    let start = Utc
        .with_ymd_and_hms(2026, 1, 5, 8, 0, 0)
        .single()
        .unwrap_or_default();
    let mut counts = Counts::default();
    let mut opportunity_no = 0;
    let mut lead_ids = Vec::new();
    for n in 1..=320 {
        let ext = format!("L{n:04}");
        let created = start + Duration::minutes(rng.below(290 * 24 * 60) as i64);
        let industry = *rng.pick(&INDUSTRIES);
        let size = [10, 50, 200, 1000, 5000][rng.below(5) as usize];
        service::leads::upsert(
            &ctx,
            service::leads::LeadInput {
                external_id: ext.clone(),
                email: Some(match account_of_lead(n) {
                    Some(a) => format!("lead{n}@{}", ACCOUNTS[a].1),
                    None => format!("lead{n}@gmail.com"),
                }),
                full_name: Some(format!("Demo Person {n}")),
                company: {
                    let drawn = rng.below(120) + 1;
                    Some(match account_of_lead(n) {
                        Some(a) => ACCOUNTS[a].0.to_string(),
                        None => format!("Company {drawn}"),
                    })
                },
                title: Some(rng.pick(&TITLES).to_string()),
                attributes: Some(vec![
                    ("industry".into(), industry.into()),
                    ("company_size".into(), size.to_string()),
                ]),
                created_at: created,
                account_external_id: None,
            },
        )
        .await?;
        counts.leads += 1;
        // The first touch created the lead; later touches follow over the next weeks.
        let mut t = created;
        let touches = 1 + rng.below(5);
        for k in 0..touches {
            let campaign = rng.pick(&CAMPAIGNS).0;
            let kind = if k == 0 {
                "form_fill"
            } else {
                rng.pick(&TOUCH_KINDS)
            };
            service::leads::record_touchpoint(
                &ctx,
                service::leads::TouchpointInput {
                    external_id: format!("{ext}-t{k}"),
                    lead_external_id: ext.clone(),
                    campaign_external_id: campaign.into(),
                    kind: kind.into(),
                    occurred_at: t,
                },
            )
            .await?;
            counts.touchpoints += 1;
            t += rng.minutes(6, 24 * 9);
        }
        lead_ids.push(ext.clone());
        let journey = Journey {
            ctx: &ctx,
            lead: ext.clone(),
        };
        // Journeys: most leads qualify, some skip ahead, some leak, some are recycled.
        let mut at = t;
        if rng.chance(28) {
            continue; // stays an inquiry
        }
        if rng.chance(6) {
            at += rng.minutes(24, 24 * 5);
            journey
                .go(LeadStage::Sql, at, "inbound demo request")
                .await?;
        } else {
            at += rng.minutes(2, 24 * 6);
            journey
                .go(LeadStage::Mql, at, "met the lead definition")
                .await?;
            if rng.chance(12) {
                at += rng.minutes(1, 24 * 3);
                journey
                    .go(LeadStage::Disqualified, at, "student, not a buyer")
                    .await?;
                counts.disqualified += 1;
                continue;
            }
            if rng.chance(15) {
                at += rng.minutes(12, 24 * 6);
                journey
                    .go(LeadStage::Recycled, at, "not ready: back to nurture")
                    .await?;
                counts.recycled += 1;
                if rng.chance(50) {
                    continue;
                }
                at += rng.minutes(24 * 10, 24 * 30);
                journey.go(LeadStage::Mql, at, "re-engaged").await?;
            }
            if rng.chance(18) {
                continue; // an MQL sales never acted on
            }
            at += rng.minutes(1, 24 * 5);
            journey.go(LeadStage::Sal, at, "accepted by sales").await?;
            if rng.chance(25) {
                continue;
            }
            at += rng.minutes(24, 24 * 12);
            journey
                .go(LeadStage::Sql, at, "budget and need confirmed")
                .await?;
        }
        if rng.chance(35) {
            continue;
        }
        // An opportunity, sometimes with colleagues from earlier leads as further contacts.
        opportunity_no += 1;
        let opp = format!("OPP-{opportunity_no:03}");
        at += rng.minutes(24, 24 * 10);
        let mut contacts = Vec::new();
        if lead_ids.len() > 5 && rng.chance(40) {
            for _ in 0..(1 + rng.below(2)) {
                let other = rng.pick(&lead_ids[..lead_ids.len() - 1]).clone();
                if !contacts.contains(&other) {
                    contacts.push(other);
                }
            }
        }
        let amount = 500_000 + rng.below(4_500_000) as i64 + 37;
        let in_currency = deal_currency(&fx, opportunity_no);
        service::opportunities::upsert(
            &ctx,
            service::opportunities::OpportunityInput {
                external_id: opp.clone(),
                name: format!("Deal {opportunity_no} with Company {}", rng.below(120) + 1),
                primary_contact_external_id: ext.clone(),
                contact_external_ids: contacts,
                owner_external_id: Some(rng.pick(&SALES).to_string()),
                amount: written(&fx, in_currency, amount),
                created_at: at,
                account_external_id: None,
            },
        )
        .await?;
        counts.opportunities += 1;
        let outcome = rng.below(100);
        if outcome >= 85 {
            continue; // still open
        }
        at += rng.minutes(24 * 7, 24 * 45);
        let won = outcome < 55;
        service::opportunities::close(
            &ctx,
            service::opportunities::CloseInput {
                external_id: opp.clone(),
                won,
                closed_at: at,
            },
        )
        .await?;
        if !won {
            counts.lost += 1;
            if rng.chance(30) {
                at += rng.minutes(24 * 5, 24 * 20);
                journey
                    .go(LeadStage::Recycled, at, "lost on timing: nurture again")
                    .await?;
                counts.recycled += 1;
            }
            continue;
        }
        counts.won += 1;
        // Bookings: the first on closing, sometimes a second instalment.
        let first = amount * 6 / 10 + 3;
        let booked = at.date_naive();
        let in_deal = |cents: i64| written(&fx, in_currency, cents);
        book(&ctx, &format!("{opp}-r1"), &opp, in_deal(first), booked).await?;
        counts.revenue += 1;
        if rng.chance(50) {
            book(
                &ctx,
                &format!("{opp}-r2"),
                &opp,
                in_deal(amount - first),
                booked + Duration::days(30),
            )
            .await?;
            counts.revenue += 1;
        }
        if counts.refunds == 0 || rng.chance(8) {
            book(
                &ctx,
                &format!("{opp}-refund"),
                &opp,
                // Refunds go out in the reporting currency, whatever the deal's.
                written(&fx, None, -(first / 7) - 1),
                booked + Duration::days(12),
            )
            .await?;
            counts.refunds += 1;
        }
    }
    lead_definition(&ctx).await?;
    pay_plans(&ctx, currency).await?;
    Ok(format!(
        "demo company loaded: {} users, {} accounts, {} campaigns, {} leads, {} touchpoints, {} opportunities ({} won, {} lost), {} bookings and {} refunds, {} recycled, {} disqualified, {} scoring rules, {} pay plans",
        USERS.len(),
        ACCOUNTS.len(),
        CAMPAIGNS.len(),
        counts.leads,
        counts.touchpoints,
        counts.opportunities,
        counts.won,
        counts.lost,
        counts.revenue,
        counts.refunds,
        counts.recycled,
        counts.disqualified,
        SCORING_RULES.len(),
        PLANS.len(),
    ))
}

#[derive(Default)]
struct Counts {
    leads: usize,
    touchpoints: usize,
    opportunities: usize,
    won: usize,
    lost: usize,
    revenue: usize,
    refunds: usize,
    recycled: usize,
    disqualified: usize,
}

struct Journey<'a> {
    ctx: &'a Ctx,
    lead: String,
}

impl Journey<'_> {
    async fn go(&self, to: LeadStage, at: DateTime<Utc>, reason: &str) -> AppResult<()> {
        service::leads::transition(
            self.ctx,
            service::leads::TransitionInput {
                lead_external_id: self.lead.clone(),
                to,
                occurred_at: at,
                reason: Some(reason.into()),
                external_id: Some(format!(
                    "{}-{}-{}",
                    self.lead,
                    to.as_str().to_lowercase(),
                    at.timestamp()
                )),
            },
        )
        .await
        .map(|_| ())
    }
}

async fn book(
    ctx: &Ctx,
    ext: &str,
    opp: &str,
    amount: (String, String),
    on: NaiveDate,
) -> AppResult<()> {
    service::opportunities::record_revenue(
        ctx,
        service::opportunities::RevenueInput {
            external_id: ext.into(),
            opportunity_external_id: opp.into(),
            amount,
            booked_on: on,
        },
    )
    .await
    .map(|_| ())
}

/// The shared lead definition of the demo: (externalId, name, rule). At most 85 points in all,
/// under the default MQL threshold of 100, so the journeys stay as loaded and scores,
/// breakdowns and `scoringCalibration` have something to show.
const SCORING_RULES: [(&str, &str, RuleKind); 4] = [
    (
        "r-webinar",
        "Attended a webinar",
        RuleKind::Behavior("webinar_attended", 10, 30),
    ),
    (
        "r-content",
        "Downloaded content",
        RuleKind::Behavior("content_download", 5, 15),
    ),
    (
        "r-event",
        "Visited the booth",
        RuleKind::Behavior("event_visit", 10, 20),
    ),
    (
        "r-cmo",
        "Title is CMO",
        RuleKind::Attribute("title", "CMO", 20),
    ),
];

enum RuleKind {
    /// touch kind, points per touch, most points
    Behavior(&'static str, i32, i32),
    /// attribute, value it equals, points
    Attribute(&'static str, &'static str, i32),
}

async fn lead_definition(ctx: &Ctx) -> AppResult<()> {
    use crate::domain::scoring::{Kind, Operator};
    for (ext, name, rule) in SCORING_RULES {
        let (kind, field, operator, value, touch_kind, points, max_points) = match rule {
            RuleKind::Behavior(touch, points, max) => (
                Kind::Behavior,
                None,
                None,
                None,
                Some(touch.to_string()),
                points,
                Some(max),
            ),
            RuleKind::Attribute(field, value, points) => (
                Kind::Attribute,
                Some(field.to_string()),
                Some(Operator::Equals),
                Some(value.to_string()),
                None,
                points,
                None,
            ),
        };
        service::scoring::upsert_rule(
            ctx,
            service::scoring::RuleInput {
                external_id: ext.into(),
                name: name.into(),
                kind,
                field,
                operator,
                value,
                touch_kind,
                points,
                max_points,
                active: true,
            },
        )
        .await?;
    }
    Ok(())
}

/// (externalId, name, model, revenue rate, quota and accelerator, bonus per qualified lead
/// in minor units, cap, marketers on it)
type PlanSpec = (
    &'static str,
    &'static str,
    crate::domain::attribution::Model,
    &'static str,
    Option<(i64, &'static str)>,
    i64,
    Option<i64>,
    &'static [&'static str],
);

/// Pay plans for the demo's marketers from the start of the year, so statements, the CSV and
/// closing a quarter work on the demo as the README shows them.
const PLANS: [PlanSpec; 2] = [
    (
        "plan-linear",
        "Linear 5% with a lead bonus",
        crate::domain::attribution::Model::Linear,
        "0.05",
        None,
        2_500,
        None,
        &["mark", "mia"],
    ),
    (
        "plan-wshaped",
        "W-shaped 4%, 6% above quota, capped",
        crate::domain::attribution::Model::WShaped,
        "0.04",
        Some((5_000_000, "0.06")),
        1_000,
        Some(2_500_000),
        &["max"],
    ),
];

async fn pay_plans(ctx: &Ctx, currency: &str) -> AppResult<()> {
    for (ext, name, model, rate, quota, bonus, cap, marketers) in PLANS {
        service::compensation::upsert_plan(
            ctx,
            service::compensation::PlanInput {
                external_id: ext.into(),
                name: name.into(),
                model,
                revenue_rate: rate.into(),
                quota: quota.map(|(q, _)| money(q, currency)),
                accelerator_rate: quota.map(|(_, r)| r.to_string()),
                qualified_lead_bonus: money(bonus, currency),
                cap: cap.map(|c| money(c, currency)),
                clawback_days: 90,
                contacts: crate::domain::account::Mapping::ContactRoles,
                custom_model: None,
            },
        )
        .await?;
        for m in marketers {
            service::compensation::assign_plan(
                ctx,
                m.to_string(),
                ext.to_string(),
                NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            )
            .await?;
        }
    }
    Ok(())
}
