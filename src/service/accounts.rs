//! Accounts (SPEC §8): upsert with domain matching, the reads behind `Account` and
//! `accounts`, and an account's timeline.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cache::Version;
use super::{check_external_id, check_non_empty, not_found, AppError, AppResult, Ctx, Outcome};
use crate::auth::{Read, Write};
use crate::db::AnyConnection;
use crate::domain::account::{check_domain, mqa_at, MqaLead, MqaSettings};
use crate::domain::period::Period;
use crate::domain::stats::{days_between, duration_stats, DurationStats};
use crate::repo::accounts::{self as repo, AccountValues};
use crate::repo::{leads, opportunities, users};

pub use crate::repo::accounts::{AccountFilter, AccountRow};

/// A user's id by externalId (None: no such user).
pub async fn owner_id(ctx: &Ctx, external_id: String) -> AppResult<Option<i64>> {
    ctx.db
        .run(move |conn| Ok(users::by_external_id(conn, &external_id)?.map(|u| u.id)))
        .await
}

/// Accounts by id (the request loaders' batched read).
pub async fn by_ids(db: &crate::db::Db, ids: Vec<i64>) -> AppResult<HashMap<i64, AccountRow>> {
    db.run(move |conn| Ok(repo::by_ids(conn, &ids)?)).await
}

#[derive(Debug, Clone)]
pub struct AccountInput {
    pub external_id: String,
    pub name: String,
    /// Lower-cased on the way in; None: the account matches no lead by domain.
    pub domain: Option<String>,
    pub owner_external_id: Option<String>,
    /// None: left as they are.
    pub attributes: Option<Vec<(String, String)>>,
}

pub async fn upsert(ctx: &Ctx, input: AccountInput) -> AppResult<AccountRow> {
    ctx.write(input, upsert_in).await
}

/// The use case inside a caller's transaction (a mutation's own, or a batch of `/import`).
/// A domain another account has is a CONFLICT; a free-mail domain is BAD_USER_INPUT. The
/// leads without an explicit account are matched again: those of its old domain leave it,
/// those of its new one join it.
pub fn upsert_in(
    ctx: &Ctx,
    conn: &mut AnyConnection,
    input: &AccountInput,
) -> AppResult<AccountRow> {
    ctx.require_write(Write::Ingest, "upsert accounts")?;
    check_external_id("account", &input.external_id)?;
    check_non_empty("name", &input.name)?;
    let domain = input
        .domain
        .as_deref()
        .map(check_domain)
        .transpose()
        .map_err(|e| AppError::BadInput(e.0))?;
    let attributes = input
        .attributes
        .as_deref()
        .map(super::sorted_attributes)
        .transpose()?;
    let owner_id = match &input.owner_external_id {
        Some(ext) => Some(
            users::by_external_id(conn, ext)?
                .ok_or_else(|| not_found("user", ext))?
                .id,
        ),
        None => None,
    };
    if let Some(d) = &domain {
        if let Some(other) = repo::by_domain(conn, d)? {
            if other.external_id != input.external_id {
                return Err(AppError::Conflict(format!(
                    "domain \"{d}\" belongs to account \"{}\"",
                    other.external_id
                )));
            }
        }
    }
    let values = AccountValues {
        external_id: &input.external_id,
        name: &input.name,
        domain: domain.as_deref(),
        owner_id,
    };
    let (id, mut outcome) = match repo::by_external_id(conn, &input.external_id)? {
        None => (repo::insert(conn, &values)?, Outcome::Created),
        Some(row) => {
            let same = row.name == input.name && row.domain == domain && row.owner_id == owner_id;
            if !same {
                repo::update(conn, row.id, &values)?;
            }
            (
                row.id,
                if same {
                    Outcome::Unchanged
                } else {
                    Outcome::Updated
                },
            )
        }
    };
    if let Some(attrs) = &attributes {
        let current: Vec<(String, String)> = repo::attributes_of(conn, &[id])?
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect();
        if &current != attrs {
            repo::replace_attributes(conn, id, attrs)?;
            if outcome == Outcome::Unchanged {
                outcome = Outcome::Updated;
            }
        }
    }
    let matched = repo::rematch(conn, id, domain.as_deref())?;
    let detail = if matched > 0 {
        format!("{}; {matched} leads matched again", outcome.as_str())
    } else {
        outcome.as_str().to_string()
    };
    ctx.audit(conn, "upsertAccount", Some(&input.external_id), &detail)?;
    repo::by_id(conn, id)?.ok_or_else(|| AppError::Internal("account vanished after upsert".into()))
}

/// Which account a lookup asks for.
pub enum AccountKey {
    Id(i64),
    External(String),
}

/// One account; accounts follow the leads' read rules (SPEC §8).
pub async fn account(ctx: &Ctx, key: AccountKey) -> AppResult<Option<AccountRow>> {
    ctx.require_read(Read::Leads, "accounts")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            Ok(match key {
                AccountKey::Id(id) => repo::by_id(conn, id)?,
                AccountKey::External(ext) => repo::by_external_id(conn, &ext)?,
            })
        })
        .await
}

/// Accounts by externalId after `after`, filtered; `mqa` keeps only accounts that are (true)
/// or are not (false) MQA, as `mqa_ids` says (filtered here: an `IN` list of every MQA account
/// would pass the databases' bind limits at scale).
pub async fn page(
    ctx: &Ctx,
    filter: AccountFilter,
    mqa_ids: Option<(bool, Vec<i64>)>,
    after: Option<String>,
    limit: i64,
    with_total: bool,
) -> AppResult<super::reads::Page<AccountRow>> {
    ctx.require_read(Read::Leads, "accounts")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let Some((wanted, ids)) = mqa_ids else {
                let rows = repo::page(conn, &filter, after.as_deref(), limit + 1)?;
                let total = if with_total {
                    repo::count(conn, &filter)?
                } else {
                    0
                };
                return Ok(super::reads::Page { rows, total });
            };
            let ids: std::collections::HashSet<i64> = ids.into_iter().collect();
            let keep = |r: &AccountRow| ids.contains(&r.id) == wanted;
            let all = repo::page(conn, &filter, None, i64::MAX)?;
            let total = all.iter().filter(|r| keep(r)).count() as i64;
            let rows = all
                .into_iter()
                .filter(|r| after.as_deref().is_none_or(|a| r.external_id.as_str() > a))
                .filter(|r| keep(r))
                .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
                .collect();
            Ok(super::reads::Page { rows, total })
        })
        .await
}

/// Each account's attributes, sorted by key.
pub async fn attributes(
    ctx: &Ctx,
    ids: Vec<i64>,
) -> AppResult<HashMap<i64, Vec<(String, String)>>> {
    ctx.db
        .run(move |conn| {
            let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
            for (id, k, v) in repo::attributes_of(conn, &ids)? {
                out.entry(id).or_default().push((k, v));
            }
            Ok(out)
        })
        .await
}

/// The leads of an account, by externalId.
pub async fn leads_of(ctx: &Ctx, account_id: i64) -> AppResult<Vec<leads::LeadRow>> {
    ctx.require_read(Read::Leads, "leads")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let ids = repo::lead_ids_of(conn, account_id)?;
            let mut rows: Vec<leads::LeadRow> = leads::by_ids(conn, &ids)?.into_values().collect();
            rows.sort_by(|a, b| a.external_id.cmp(&b.external_id));
            Ok(rows)
        })
        .await
}

/// The opportunities of an account the caller may see, by externalId: those naming it and
/// those without an account whose primary contact belongs to it.
pub async fn opportunities_of(
    ctx: &Ctx,
    account_id: i64,
) -> AppResult<Vec<opportunities::OpportunityRow>> {
    ctx.require_read(Read::Opportunities, "opportunities")?;
    let rows = ctx
        .db
        .run(move |conn| -> AppResult<_> {
            let ids = repo::opportunity_ids_of(conn, account_id)?;
            Ok(opportunities::by_ids(conn, &ids)?)
        })
        .await?;
    let mut rows: Vec<_> = rows
        .into_values()
        .filter(|o| super::opportunities::can_see(ctx, o.owner_id))
        .collect();
    rows.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    Ok(rows)
}

/// Every touch of every lead of the account, in time order, then externalId.
pub async fn timeline(ctx: &Ctx, account_id: i64) -> AppResult<Vec<leads::TouchpointRow>> {
    ctx.require_read(Read::Leads, "touchpoints")?;
    ctx.db
        .run(move |conn| -> AppResult<_> {
            let ids = repo::lead_ids_of(conn, account_id)?;
            let mut rows = leads::touchpoints_of(conn, &ids)?;
            rows.sort_by(|a, b| {
                (a.occurred_at, &a.external_id).cmp(&(b.occurred_at, &b.external_id))
            });
            Ok(rows)
        })
        .await
}

const MQA_MIN_CONTACTS_KEY: &str = "mqa_min_contacts";
const MQA_THRESHOLD_KEY: &str = "mqa_threshold";

pub fn mqa_settings_in(conn: &mut AnyConnection) -> AppResult<MqaSettings> {
    let default = MqaSettings::default();
    let get = |conn: &mut AnyConnection, key: &str| -> AppResult<Option<i64>> {
        Ok(crate::repo::settings::get(conn, key)?.and_then(|v| v.parse().ok()))
    };
    Ok(MqaSettings {
        min_contacts: get(conn, MQA_MIN_CONTACTS_KEY)?
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default.min_contacts),
        threshold: get(conn, MQA_THRESHOLD_KEY)?.unwrap_or(default.threshold),
    })
}

pub async fn mqa_settings(ctx: &Ctx) -> AppResult<MqaSettings> {
    ctx.require_read(Read::LeadDefinition, "the MQA settings")?;
    ctx.db.run(mqa_settings_in).await
}

/// Sets the two MQA settings (ADMIN, MARKETING_MANAGER).
pub async fn set_mqa_settings(ctx: &Ctx, settings: MqaSettings) -> AppResult<MqaSettings> {
    ctx.require_write(Write::Scoring, "change the MQA settings")?;
    if settings.min_contacts < 1 {
        return Err(AppError::BadInput("minContacts must be at least 1".into()));
    }
    if settings.threshold < 0 {
        return Err(AppError::BadInput("threshold must not be negative".into()));
    }
    ctx.write(settings, |ctx, conn, s| {
        crate::repo::settings::set(conn, MQA_MIN_CONTACTS_KEY, &s.min_contacts.to_string())?;
        crate::repo::settings::set(conn, MQA_THRESHOLD_KEY, &s.threshold.to_string())?;
        ctx.audit(
            conn,
            "setMqaSettings",
            None,
            &format!("minContacts {}, threshold {}", s.min_contacts, s.threshold),
        )?;
        Ok(*s)
    })
    .await
}

/// An account's milestones: MQA, its first opportunity created, its first opportunity won.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Milestones {
    pub mqa: Option<DateTime<Utc>>,
    pub first_opportunity: Option<DateTime<Utc>>,
    pub first_win: Option<DateTime<Utc>>,
}

/// Every account's milestones (those with none are absent), with what they were computed
/// under: the MQA settings and the active scoring rules.
#[derive(Debug, Default, Clone)]
pub struct AccountStates {
    pub milestones: HashMap<i64, Milestones>,
    /// The settings and rules (as text) they were computed with: a change to either makes them
    /// again from scratch.
    under: String,
}

/// What the milestones depend on besides the leads and deals.
fn basis(
    conn: &mut AnyConnection,
) -> AppResult<(MqaSettings, Vec<crate::domain::scoring::Rule>, String)> {
    let settings = mqa_settings_in(conn)?;
    let rules = super::scoring::active_rules(conn)?;
    let under = format!("{settings:?} {rules:?}");
    Ok((settings, rules, under))
}

/// The milestones of some accounts (None: of every account), read from the database.
fn milestones_of(
    conn: &mut AnyConnection,
    settings: MqaSettings,
    rules: &[crate::domain::scoring::Rule],
    only: Option<&[i64]>,
) -> AppResult<HashMap<i64, Milestones>> {
    let mut milestones: HashMap<i64, Milestones> = HashMap::new();
    let facts = match only {
        None => repo::deal_facts(conn)?,
        Some(ids) => repo::deal_facts_of(conn, ids)?,
    };
    let wanted = |a: i64| only.is_none_or(|ids| ids.binary_search(&a).is_ok());
    for (given, primary, created, status, closed) in facts {
        let Some(account) = given.or(primary).filter(|a| wanted(*a)) else {
            continue;
        };
        let m = milestones.entry(account).or_default();
        let created = created.and_utc();
        m.first_opportunity = Some(m.first_opportunity.map_or(created, |t| t.min(created)));
        if status == crate::domain::deal::DealStatus::Won.as_str() {
            if let Some(closed) = closed.map(|t| t.and_utc()) {
                m.first_win = Some(m.first_win.map_or(closed, |t| t.min(closed)));
            }
        }
    }
    // Only accounts with enough contacts at MQL can qualify by their scores.
    let mut qualified: HashMap<i64, u32> = HashMap::new();
    let mqls = match only {
        None => repo::accounts_of_mqls(conn)?,
        Some(ids) => repo::leads_of_accounts(conn, ids)?
            .into_iter()
            .filter(|l| l.mql_at.is_some())
            .filter_map(|l| l.account_id)
            .collect(),
    };
    for account in mqls {
        *qualified.entry(account).or_default() += 1;
    }
    let mut candidates: Vec<i64> = qualified
        .into_iter()
        .filter(|(_, n)| *n >= settings.min_contacts)
        .map(|(a, _)| a)
        .collect();
    candidates.sort_unstable();
    for chunk in candidates.chunks(crate::repo::CHUNK) {
        let rows = repo::leads_of_accounts(conn, chunk)?;
        let ids: Vec<i64> = rows.iter().map(|l| l.id).collect();
        let mut attributes: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for a in leads::attributes_of(conn, &ids)? {
            attributes
                .entry(a.lead_id)
                .or_default()
                .push((a.key, a.value));
        }
        let mut touches: HashMap<i64, Vec<(DateTime<Utc>, String, String)>> = HashMap::new();
        for t in leads::touchpoints_of(conn, &ids)? {
            touches.entry(t.lead_id).or_default().push((
                t.occurred_at.and_utc(),
                t.external_id,
                t.kind,
            ));
        }
        let mut by_account: HashMap<i64, Vec<MqaLead>> = HashMap::new();
        for row in &rows {
            let Some(account) = row.account_id else {
                continue;
            };
            let mut mine = touches.remove(&row.id).unwrap_or_default();
            mine.sort();
            by_account.entry(account).or_default().push(MqaLead {
                created_at: row.created_at.and_utc(),
                mql_at: row.mql_at.map(|t| t.and_utc()),
                profile: super::scoring::profile(
                    row,
                    attributes.get(&row.id).map(Vec::as_slice).unwrap_or(&[]),
                ),
                touches: mine.into_iter().map(|(at, _, kind)| (at, kind)).collect(),
            });
        }
        for (account, leads) in by_account {
            let m = milestones.entry(account).or_default();
            m.mqa = mqa_at(rules, settings, &leads, m.first_opportunity);
        }
    }
    for m in milestones.values_mut() {
        if m.mqa.is_none() {
            // An opportunity created before MQA makes the account MQA then.
            m.mqa = m.first_opportunity;
        }
    }
    Ok(milestones)
}

/// The accounts whose leads or deals changed since index version `since` (as they were then
/// and as they are): the ones whose milestones may have moved. None when the journal no longer
/// reaches back that far.
fn touched_accounts(j: &super::index::Journeys, since: i64) -> Option<Vec<i64>> {
    let changed = j.journal.since(since)?;
    let mut out: Vec<i64> = Vec::new();
    for (id, old) in &changed.leads {
        out.extend(old.and_then(|l| l.account));
        out.extend(j.lead(*id).and_then(|l| l.account));
    }
    let then = |id: i64| match changed.leads.get(&id) {
        Some(old) => old.and_then(|l| l.account),
        None => j.lead(id).and_then(|l| l.account),
    };
    for (id, old) in &changed.deals {
        if let Some(d) = old {
            out.extend(d.row.account_id.or_else(|| then(d.row.primary_contact_id)));
        }
        if let Some(d) = j.deal(*id) {
            out.extend(j.account_of(d));
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The account milestones as of now. On the journey index they are kept with its version and
/// brought forward by computing again only the accounts whose leads or deals changed since
/// (a CRM sync's writes touch a few accounts a second); else read whole per data version.
pub fn states_in(ctx: &Ctx, conn: &mut AnyConnection) -> AppResult<Arc<AccountStates>> {
    let whole = Period::new(chrono::NaiveDate::MIN, chrono::NaiveDate::MAX)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let index = ctx.reports.index.clone();
    if index.current(conn)? {
        // One computation at a time: the resolvers of a page of accounts ask together, and the
        // first brings the milestones forward while the others wait for it to keep them.
        static COMPUTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = COMPUTING
            .lock()
            .map_err(|_| AppError::Internal("the account milestones lock was poisoned".into()))?;
        let (settings, rules, under) = basis(conn)?;
        let version = index.version();
        let kept = ctx.reports.take_indexed::<AccountStates>(whole, version);
        if kept.as_ref().is_some_and(|(_, k)| k.under != under) {
            // Computed under other settings or rules: forget it, so the new one is kept.
            ctx.reports.forget_indexed::<AccountStates>(whole);
        }
        let states = match kept {
            Some((at, kept)) if at == version && kept.under == under => kept,
            Some((at, kept)) if kept.under == under => {
                match index.read(|j| touched_accounts(j, at))? {
                    Some(accounts) => {
                        let mut states = Arc::try_unwrap(kept).unwrap_or_else(|k| (*k).clone());
                        for a in &accounts {
                            states.milestones.remove(a);
                        }
                        states.milestones.extend(milestones_of(
                            conn,
                            settings,
                            &rules,
                            Some(&accounts),
                        )?);
                        Arc::new(states)
                    }
                    None => Arc::new(AccountStates {
                        milestones: milestones_of(conn, settings, &rules, None)?,
                        under,
                    }),
                }
            }
            _ => Arc::new(AccountStates {
                milestones: milestones_of(conn, settings, &rules, None)?,
                under,
            }),
        };
        ctx.reports.keep_indexed(version, whole, states.clone());
        return Ok(states);
    }
    let version = Version::Data(crate::repo::reports::data_version(conn)?);
    ctx.reports.get_or_load(version, whole, || {
        let (settings, rules, under) = basis(conn)?;
        Ok(AccountStates {
            milestones: milestones_of(conn, settings, &rules, None)?,
            under,
        })
    })
}

pub async fn states(ctx: &Ctx) -> AppResult<Arc<AccountStates>> {
    let ctx2 = ctx.clone();
    ctx.db.run_primary(move |conn| states_in(&ctx2, conn)).await
}

/// The account funnel of a period (SPEC §8).
#[derive(Debug, Clone, PartialEq)]
pub struct AccountFunnel {
    pub mqa: usize,
    pub opportunity: usize,
    pub won: usize,
    /// Days MQA → first opportunity, over the accounts whose first opportunity is in the period.
    pub mqa_to_opportunity: DurationStats,
    /// Days first opportunity → first win, over the accounts whose first win is in the period.
    pub opportunity_to_won: DurationStats,
}

pub async fn account_funnel(ctx: &Ctx, period: Period) -> AppResult<AccountFunnel> {
    // Company-wide counts of first deals and wins: for roles that see every campaign and deal.
    if ctx.require_read(Read::Campaigns, "the account funnel")? != crate::auth::Scope::All
        || ctx.read_scope(Read::Opportunities) != crate::auth::Scope::All
    {
        return Err(AppError::Forbidden(format!(
            "role {} may not read the company's account funnel",
            ctx.caller.role.as_str()
        )));
    }
    let states = states(ctx).await?;
    let mut out = (0, 0, 0, Vec::new(), Vec::new());
    for m in states.milestones.values() {
        if m.mqa.is_some_and(|t| period.holds(t)) {
            out.0 += 1;
        }
        if let Some(o) = m.first_opportunity.filter(|t| period.holds(*t)) {
            out.1 += 1;
            if let Some(q) = m.mqa {
                out.3.push(days_between(q, o));
            }
        }
        if let Some(w) = m.first_win.filter(|t| period.holds(*t)) {
            out.2 += 1;
            if let Some(o) = m.first_opportunity {
                out.4.push(days_between(o, w));
            }
        }
    }
    Ok(AccountFunnel {
        mqa: out.0,
        opportunity: out.1,
        won: out.2,
        mqa_to_opportunity: duration_stats(out.3),
        opportunity_to_won: duration_stats(out.4),
    })
}

/// Whether the caller may see an account's deal milestones (first opportunity, first win):
/// every role that sees every deal; a SALES_REP on the accounts they own.
pub fn may_see_deal_milestones(ctx: &Ctx, account: &AccountRow) -> bool {
    match ctx.read_scope(Read::Opportunities) {
        crate::auth::Scope::All => true,
        crate::auth::Scope::Own(_) => ctx.owns(account.owner_id),
        crate::auth::Scope::None => false,
    }
}

/// Per account: (leads, summed current score, leads with a touch in the last `days`).
pub async fn engagement(
    ctx: &Ctx,
    ids: Vec<i64>,
    days: i64,
) -> AppResult<HashMap<i64, (i64, i64, i64)>> {
    ctx.require_read(Read::Leads, "account engagement")?;
    if !(1..=3650).contains(&days) {
        return Err(AppError::BadInput("days must be between 1 and 3650".into()));
    }
    let since = (Utc::now() - chrono::Duration::days(days)).naive_utc();
    ctx.db
        .run(move |conn| Ok(repo::engagement(conn, &ids, since)?))
        .await
}
