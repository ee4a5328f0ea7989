//! Every DataLoader of a request, in one registry: nested fields batch their reads so a page
//! of leads costs the same number of queries whatever its size.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::OnceLock;

use async_graphql::dataloader::{DataLoader, Loader};
use chrono::NaiveDate;

use crate::db::Db;
use crate::repo::campaigns::CampaignRow;
use crate::repo::leads::{LeadRow, TouchpointRow, TransitionRow};
use crate::repo::opportunities::{OpportunityRow, RevenueRow};
use crate::repo::users::UserRow;
use crate::repo::{campaigns, leads, opportunities, users};
use crate::service::AppError;

/// A loader failure, shared by every field that waited on the batch.
#[derive(Clone, Debug)]
pub struct LoadError(pub Arc<AppError>);

impl From<LoadError> for async_graphql::Error {
    fn from(e: LoadError) -> Self {
        super::error::to_graphql(&e.0)
    }
}

fn group<K: Eq + Hash, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>> {
    let mut out: HashMap<K, Vec<V>> = HashMap::new();
    for row in rows {
        out.entry(key(&row)).or_default().push(row);
    }
    out
}

macro_rules! loader {
    ($(#[$doc:meta])* $name:ident, $key:ty => $value:ty, |$conn:ident, $keys:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name(pub Db);

        impl Loader<$key> for $name {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                let $keys: Vec<$key> = keys.to_vec();
                self.0
                    .run(move |$conn| -> Result<HashMap<$key, $value>, AppError> { Ok($body) })
                    .await
                    .map_err(|e| LoadError(Arc::new(e)))
            }
        }
    };
}

loader!(UserById, i64 => UserRow, |conn, keys| users::by_ids(conn, &keys)?);
loader!(CampaignById, i64 => CampaignRow, |conn, keys| campaigns::by_ids(conn, &keys)?);
loader!(LeadById, i64 => LeadRow, |conn, keys| leads::by_ids(conn, &keys)?);
loader!(OpportunityById, i64 => OpportunityRow, |conn, keys| opportunities::by_ids(conn, &keys)?);
loader!(TouchpointById, i64 => TouchpointRow, |conn, keys| leads::touchpoints_by_ids(conn, &keys)?);
loader!(
    /// A lead's touchpoints in time order, then externalId.
    TouchpointsByLead, i64 => Vec<TouchpointRow>,
    |conn, keys| group(leads::touchpoints_of(conn, &keys)?, |t| t.lead_id)
);
loader!(
    /// A lead's history rows in the order the moves were made.
    TransitionsByLead, i64 => Vec<TransitionRow>,
    |conn, keys| group(leads::transitions_of(conn, &keys)?, |t| t.lead_id)
);
loader!(
    AttributesByLead, i64 => Vec<(String, String)>,
    |conn, keys| {
        let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for a in leads::attributes_of(conn, &keys)? {
            out.entry(a.lead_id).or_default().push((a.key, a.value));
        }
        out
    }
);
loader!(
    /// Contact lead ids of an opportunity, primary first.
    ContactsByOpportunity, i64 => Vec<i64>,
    |conn, keys| {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for (opp, lead) in opportunities::contacts_of(conn, &keys)? {
            out.entry(opp).or_default().push(lead);
        }
        out
    }
);
loader!(
    RevenueByOpportunity, i64 => Vec<RevenueRow>,
    |conn, keys| group(opportunities::revenue_of(conn, &keys)?, |r| r.opportunity_id)
);
loader!(
    /// Owners of the opportunities a lead is a contact of (a sales rep's view of personal data).
    OpportunityOwnersByLead, i64 => Vec<i64>,
    |conn, keys| {
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for (lead, owner) in opportunities::owners_by_contact(conn, &keys)? {
            out.entry(lead).or_default().push(owner);
        }
        out
    }
);

loader!(
    /// Every scoring rule (one key, 0): read once per request.
    RulesLoader, i64 => Vec<crate::repo::scoring::RuleRow>,
    |conn, _keys| HashMap::from([(0, crate::repo::scoring::all(conn)?)])
);

/// A campaign's cost, optionally only inside a period of days.
pub type CostKey = (i64, Option<(NaiveDate, NaiveDate)>);

loader!(
    CostByCampaign, CostKey => i64,
    |conn, keys| {
        let mut out: HashMap<CostKey, i64> = HashMap::new();
        let mut by_range: HashMap<Option<(NaiveDate, NaiveDate)>, Vec<i64>> = HashMap::new();
        for (id, range) in &keys {
            by_range.entry(*range).or_default().push(*id);
        }
        for (range, ids) in by_range {
            for id in &ids {
                out.insert((*id, range), 0);
            }
            for cost in campaigns::costs_of(conn, &ids, range)? {
                let slot = out.entry((cost.campaign_id, range)).or_insert(0);
                *slot = slot
                    .checked_add(cost.amount_cents)
                    .ok_or_else(|| AppError::overflow("the campaign's cost"))?;
            }
        }
        out
    }
);

/// The loaders of one request.
macro_rules! loaders {
    ($($name:ident: $loader:ident,)*) => {
        /// The request's loaders, each made on first use: most requests touch one or two of
        /// them, and making all thirteen up front was a measurable part of a small request.
        pub struct Loaders {
            db: Db,
            $($name: OnceLock<DataLoader<$loader>>,)*
        }

        impl Loaders {
            pub fn new(db: &Db) -> Loaders {
                Loaders {
                    db: db.clone(),
                    $($name: OnceLock::new(),)*
                }
            }
            $(
                pub fn $name(&self) -> &DataLoader<$loader> {
                    self.$name
                        .get_or_init(|| DataLoader::new($loader(self.db.clone()), tokio::spawn))
                }
            )*
        }
    };
}

loaders! {
    users: UserById,
    campaigns: CampaignById,
    leads: LeadById,
    opportunities: OpportunityById,
    touchpoints: TouchpointById,
    touchpoints_by_lead: TouchpointsByLead,
    transitions_by_lead: TransitionsByLead,
    attributes_by_lead: AttributesByLead,
    contacts: ContactsByOpportunity,
    revenue: RevenueByOpportunity,
    opportunity_owners: OpportunityOwnersByLead,
    costs: CostByCampaign,
    rules: RulesLoader,
}
