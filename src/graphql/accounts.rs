//! Accounts (SPEC §8): the `Account` type, `account`/`accounts`, the account funnel, the MQA
//! settings and `upsertAccount`.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject, ID};

use super::ids::{self, page_args};
use super::types::{Account, LeadAttributeInput, Period};
use super::{session, PeriodInput};
use crate::domain::account::MqaSettings;
use crate::service::accounts::{self as service, AccountFilter, AccountKey};
use crate::service::AppError;

/// A company that buys (SPEC §8). Upserted by externalId.
#[derive(InputObject)]
pub struct AccountInput {
    pub external_id: String,
    pub name: String,
    /// Its email domain, the whole host (`acme.com`; `eu.acme.com` is another): leads without
    /// an explicit account whose email has this host belong to it. Lower-cased; unique; never
    /// a free-mail domain.
    pub domain: Option<String>,
    /// Its owner (a sales rep).
    pub owner_external_id: Option<String>,
    /// Free attributes (`industry`, `employees`, `segment`, ...). Absent: left as they are.
    pub attributes: Option<Vec<LeadAttributeInput>>,
}

impl From<AccountInput> for crate::service::accounts::AccountInput {
    fn from(input: AccountInput) -> Self {
        crate::service::accounts::AccountInput {
            external_id: input.external_id,
            name: input.name,
            domain: input.domain,
            owner_external_id: input.owner_external_id,
            attributes: input
                .attributes
                .map(|list| list.into_iter().map(|a| (a.key, a.value)).collect()),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct AccountEdge {
    pub cursor: String,
    pub node: Account,
}

#[derive(SimpleObject, Clone)]
pub struct AccountConnection {
    pub edges: Vec<AccountEdge>,
    pub nodes: Vec<Account>,
    pub page_info: super::types::PageInfo,
    pub total_count: i64,
}

/// Days between two account milestones.
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountLeg {
    /// Accounts measured: those whose later milestone falls in the period.
    pub count: i32,
    pub median_days: Option<f64>,
    pub p90_days: Option<f64>,
}

/// The account funnel of a period (SPEC §8).
#[derive(SimpleObject, Clone, Debug)]
pub struct AccountFunnel {
    pub period: Period,
    /// Accounts that first became MQA in the period.
    pub mqa: i32,
    /// Accounts whose first opportunity was created in the period.
    pub opportunity: i32,
    /// Accounts whose first opportunity was won in the period.
    pub won: i32,
    pub mqa_to_opportunity: AccountLeg,
    pub opportunity_to_won: AccountLeg,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct MqaSettingsValue {
    /// Leads of the account that must have reached MQL.
    pub min_contacts: i32,
    /// What the scores of its leads must sum to.
    pub threshold: i32,
}

fn leg(d: crate::domain::stats::DurationStats) -> AccountLeg {
    AccountLeg {
        count: i32::try_from(d.count).unwrap_or(i32::MAX),
        median_days: d.median,
        p90_days: d.p90,
    }
}

fn settings_value(s: MqaSettings) -> MqaSettingsValue {
    MqaSettingsValue {
        min_contacts: i32::try_from(s.min_contacts).unwrap_or(i32::MAX),
        threshold: i32::try_from(s.threshold).unwrap_or(i32::MAX),
    }
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// One account, by exactly one of `id` and `externalId`.
    async fn account(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        external_id: Option<String>,
    ) -> Result<Option<Account>> {
        let key = match (id, external_id) {
            (Some(id), None) => AccountKey::Id(ids::decode_as(&id, "Account")?),
            (None, Some(ext)) => AccountKey::External(ext),
            _ => {
                return Err(AppError::BadInput(
                    "give exactly one of id and externalId to find an Account".into(),
                )
                .into())
            }
        };
        Ok(service::account(&session(ctx).ctx, key).await?.map(Account))
    }

    /// Accounts by externalId: optionally only a segment (the `segment` attribute), an owner,
    /// or those that are (mqa: true) or are not (mqa: false) MQA.
    #[graphql(
        complexity = "first.unwrap_or(ids::DEFAULT_PAGE).clamp(0, ids::MAX_PAGE + 1) as usize * child_complexity"
    )]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        segment: Option<String>,
        owner_external_id: Option<String>,
        mqa: Option<bool>,
    ) -> Result<AccountConnection> {
        let s = session(ctx);
        let (limit, after) = page_args(first, after)?;
        let had_after = after.is_some();
        let owner_id = match owner_external_id {
            Some(ext) => Some(service::owner_id(&s.ctx, ext).await?.unwrap_or(i64::MIN)),
            None => None,
        };
        let mqa_ids = match mqa {
            Some(wanted) => {
                let states = service::states(&s.ctx).await?;
                let ids: Vec<i64> = states
                    .milestones
                    .iter()
                    .filter(|(_, m)| m.mqa.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                Some((wanted, ids))
            }
            None => None,
        };
        let filter = AccountFilter { owner_id, segment };
        let wants_total = ctx.look_ahead().field("totalCount").exists();
        let page = service::page(&s.ctx, filter, mqa_ids, after, limit, wants_total).await?;
        let has_next_page = page.rows.len() as i64 > limit;
        let mut rows = page.rows;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<AccountEdge> = rows
            .into_iter()
            .map(|row| AccountEdge {
                cursor: ids::cursor(&row.external_id),
                node: Account(row),
            })
            .collect();
        Ok(AccountConnection {
            nodes: edges.iter().map(|e| e.node.clone()).collect(),
            page_info: super::types::PageInfo {
                has_next_page,
                has_previous_page: had_after,
                start_cursor: edges.first().map(|e| e.cursor.clone()),
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count: page.total,
        })
    }

    /// Accounts whose first MQA, first opportunity and first win fall in the period, with the
    /// days between those milestones.
    async fn account_funnel(
        &self,
        ctx: &Context<'_>,
        period: PeriodInput,
    ) -> Result<AccountFunnel> {
        let period = period.checked()?;
        let f = service::account_funnel(&session(ctx).ctx, period).await?;
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(AccountFunnel {
            period: Period {
                from: super::scalars::Date(period.from),
                to: super::scalars::Date(period.to),
            },
            mqa: count(f.mqa),
            opportunity: count(f.opportunity),
            won: count(f.won),
            mqa_to_opportunity: leg(f.mqa_to_opportunity),
            opportunity_to_won: leg(f.opportunity_to_won),
        })
    }

    /// When an account becomes MQA.
    async fn mqa_settings(&self, ctx: &Context<'_>) -> Result<MqaSettingsValue> {
        Ok(settings_value(
            service::mqa_settings(&session(ctx).ctx).await?,
        ))
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates or updates an account by externalId; leads without an explicit account are
    /// matched to it again by its domain.
    async fn upsert_account(&self, ctx: &Context<'_>, input: AccountInput) -> Result<Account> {
        let row = service::upsert(&session(ctx).ctx, input.into()).await?;
        Ok(Account(row))
    }

    /// Sets when an account becomes MQA (ADMIN, MARKETING_MANAGER).
    async fn set_mqa_settings(
        &self,
        ctx: &Context<'_>,
        min_contacts: i32,
        threshold: i32,
    ) -> Result<MqaSettingsValue> {
        let settings = MqaSettings {
            min_contacts: u32::try_from(min_contacts)
                .map_err(|_| AppError::BadInput("minContacts must be at least 1".into()))?,
            threshold: i64::from(threshold),
        };
        Ok(settings_value(
            service::set_mqa_settings(&session(ctx).ctx, settings).await?,
        ))
    }
}
