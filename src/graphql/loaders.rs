//! Every DataLoader of a request, in one registry: nested fields batch their reads so a page
//! of leads costs the same number of queries whatever its size.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::OnceLock;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::db::Db;
use crate::service::reads::batch::{self, CostKey};
use crate::service::reads::{
    CampaignRow, LeadRow, OpportunityRow, RevenueRow, RuleRow, TouchpointRow, TransitionRow,
    UserRow,
};
use crate::service::AppError;

/// A loader failure, shared by every field that waited on the batch.
#[derive(Clone, Debug)]
pub struct LoadError(pub Arc<AppError>);

impl From<LoadError> for async_graphql::Error {
    fn from(e: LoadError) -> Self {
        super::error::to_graphql(&e.0)
    }
}

/// A loader over one of the service's batched reads.
macro_rules! loader {
    ($(#[$doc:meta])* $name:ident, $key:ty => $value:ty, |$db:ident, $keys:ident| $body:expr) => {
        $(#[$doc])*
        pub struct $name(pub Db);

        impl Loader<$key> for $name {
            type Value = $value;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, LoadError> {
                let $db = &self.0;
                let $keys: Vec<$key> = keys.to_vec();
                $body.await.map_err(|e| LoadError(Arc::new(e)))
            }
        }
    };
}

loader!(UserById, i64 => UserRow, |db, keys| batch::users(db, keys));
loader!(CampaignById, i64 => CampaignRow, |db, keys| batch::campaigns(db, keys));
loader!(LeadById, i64 => LeadRow, |db, keys| batch::leads(db, keys));
loader!(OpportunityById, i64 => OpportunityRow, |db, keys| batch::opportunities(db, keys));
loader!(TouchpointById, i64 => TouchpointRow, |db, keys| batch::touchpoints(db, keys));
loader!(TouchpointsByLead, i64 => Vec<TouchpointRow>, |db, keys| batch::touchpoints_by_lead(db, keys));
loader!(TransitionsByLead, i64 => Vec<TransitionRow>, |db, keys| batch::transitions_by_lead(db, keys));
loader!(AttributesByLead, i64 => Vec<(String, String)>, |db, keys| batch::attributes_by_lead(db, keys));
loader!(ContactsByOpportunity, i64 => Vec<i64>, |db, keys| batch::contacts(db, keys));
loader!(RevenueByOpportunity, i64 => Vec<RevenueRow>, |db, keys| batch::revenue(db, keys));
loader!(OpportunityOwnersByLead, i64 => Vec<i64>, |db, keys| batch::opportunity_owners(db, keys));
loader!(AccountById, i64 => crate::service::accounts::AccountRow, |db, keys| crate::service::accounts::by_ids(db, keys));
loader!(RulesLoader, i64 => Vec<RuleRow>, |db, _keys| batch::rules(db));
loader!(CostByCampaign, CostKey => i64, |db, keys| batch::costs(db, keys));

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
    accounts: AccountById,
}
