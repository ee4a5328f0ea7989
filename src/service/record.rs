//! One record of a bulk import, typed like the mutation input it stands for: what the import
//! driver (`import`) hands to the set-based path (`batch`) and to the use cases.

use super::{accounts, campaigns, currency, leads, opportunities, users};

/// One record of the import, typed like the mutation input it stands for.
#[derive(Debug, Clone)]
pub enum Record {
    User(users::UserInput),
    Campaign(campaigns::CampaignInput),
    CampaignCost(campaigns::CostInput),
    Lead(leads::LeadInput),
    Touchpoint(leads::TouchpointInput),
    Transition(leads::TransitionInput),
    Opportunity(opportunities::OpportunityInput),
    CloseOpportunity(opportunities::CloseInput),
    Revenue(opportunities::RevenueInput),
    Account(accounts::AccountInput),
    ExchangeRate(currency::RateInput),
}
