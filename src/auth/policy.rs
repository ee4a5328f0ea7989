//! The permission matrix of SPEC §6, in one place. Every access decision in the server asks
//! these functions; a role not named for something gets `Scope::None`.

use super::Role::{self, *};

/// How much of a kind of data a role may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every row.
    All,
    /// Only rows tied to the caller, and the scope says which: call sites never decide what
    /// "own" means from the role.
    Own(Owned),
    /// Nothing.
    None,
}

/// What "own" means for a scope. "Owns" is always `owner = the caller's user row`: a caller
/// without a user row owns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// Campaigns the caller owns, and what hangs off them: their costs, their credits, the
    /// leads they sourced.
    Campaigns,
    /// Leads touched by a campaign the caller owns.
    LeadsTouchedByOwnCampaigns,
    /// Leads the caller owns, the contacts of opportunities the caller owns, and the leads of
    /// accounts the caller owns.
    LeadsAndOwnDealContacts,
    /// Leads the caller owns.
    Leads,
    /// Opportunities the caller owns, and their revenue.
    Deals,
    /// The caller's own row (user, statement): matched by the token's `sub`.
    Myself,
}

impl Scope {
    pub fn is_some(self) -> bool {
        self != Scope::None
    }
}

/// What is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// A lead's email and full name.
    LeadPersonalData,
    /// Campaigns, their costs, ROI and attribution.
    Campaigns,
    /// Opportunities and revenue.
    Opportunities,
    /// Compensation statements.
    Statements,
    /// Users (name, role).
    Users,
    /// A user's email.
    UserEmail,
    /// The audit log.
    AuditLog,
    /// Leads without their personal data: stage, score, touchpoints, history.
    Leads,
    /// MQLs sales never acted on: marketing (own campaigns for a MARKETER) and sales (own leads).
    Leakage,
    /// The shared lead definition: scoring rules and the MQL threshold.
    LeadDefinition,
}

/// What is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Users, leads, touchpoints, opportunities, revenue (the CRM sync).
    Ingest,
    /// Campaigns and their costs.
    Campaigns,
    /// Scoring rules and the MQL threshold.
    Scoring,
    /// Compensation plans, assignments, period close and reopen.
    Compensation,
    /// Exchange rates (SPEC §9): finance sets them, the CRM sync brings them.
    ExchangeRates,
    /// Custom attribution models (SPEC §4b).
    AttributionModels,
}

pub fn read(role: Role, what: Read) -> Scope {
    use Owned::*;
    use Scope::{All, None, Own};
    match (what, role) {
        (Read::LeadPersonalData, Admin | MarketingManager | Integration) => All,
        (Read::LeadPersonalData, Marketer) => Own(LeadsTouchedByOwnCampaigns),
        (Read::LeadPersonalData, SalesRep) => Own(LeadsAndOwnDealContacts),
        (Read::LeadPersonalData, Finance | Analyst) => None,

        (Read::Campaigns, Admin | Finance | MarketingManager | Analyst) => All,
        (Read::Campaigns, Marketer) => Own(Campaigns),
        (Read::Campaigns, SalesRep | Integration) => None,

        (Read::Opportunities, Admin | Finance | MarketingManager | Analyst | Integration) => All,
        (Read::Opportunities, SalesRep) => Own(Deals),
        (Read::Opportunities, Marketer) => None,

        (Read::Statements, Admin | Finance | MarketingManager) => All,
        (Read::Statements, Marketer) => Own(Myself),
        (Read::Statements, SalesRep | Analyst | Integration) => None,

        (Read::Users, Admin | Finance | MarketingManager | Analyst | Integration) => All,
        (Read::Users, Marketer | SalesRep) => Own(Myself),

        (Read::UserEmail, Admin | Finance | MarketingManager | Integration) => All,
        (Read::UserEmail, Marketer | SalesRep) => Own(Myself),
        (Read::UserEmail, Analyst) => None,

        (Read::AuditLog, Admin | Finance) => All,
        (Read::AuditLog, _) => None,

        (Read::Leads, _) => All,

        (Read::Leakage, Admin | Finance | MarketingManager | Analyst) => All,
        (Read::Leakage, Marketer) => Own(Campaigns),
        (Read::Leakage, SalesRep) => Own(Leads),
        (Read::Leakage, Integration) => None,

        (Read::LeadDefinition, _) => All,
    }
}

pub fn write(role: Role, what: Write) -> Scope {
    use Owned::*;
    use Scope::{All, None, Own};
    match (what, role) {
        (Write::Ingest, Admin | Integration) => All,
        (Write::Ingest, _) => None,

        (Write::Campaigns, Admin | MarketingManager | Integration) => All,
        (Write::Campaigns, Marketer) => Own(Campaigns),
        (Write::Campaigns, _) => None,

        (Write::Scoring, Admin | MarketingManager) => All,
        (Write::Scoring, _) => None,

        (Write::Compensation, Admin | Finance) => All,
        (Write::Compensation, _) => None,

        (Write::ExchangeRates, Admin | Finance | Integration) => All,
        (Write::ExchangeRates, _) => None,

        (Write::AttributionModels, Admin | MarketingManager) => All,
        (Write::AttributionModels, _) => None,
    }
}

/// Which lead moves a role may make (the "lead transitions" row of SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionRights {
    /// Any move the lifecycle allows.
    Any,
    /// Marketing's moves: INQUIRY/RECYCLED → MQL, and → RECYCLED or DISQUALIFIED.
    Marketing,
    /// Sales' moves on their own leads, unowned MQLs (accepting assigns the lead), and the
    /// contacts of their own opportunities.
    SalesOwn,
    None,
}

pub fn transitions(role: Role) -> TransitionRights {
    match role {
        Admin | Integration => TransitionRights::Any,
        MarketingManager => TransitionRights::Marketing,
        SalesRep => TransitionRights::SalesOwn,
        Finance | Marketer | Analyst => TransitionRights::None,
    }
}

/// Whether a role may send `/import` at all: it carries ingest records, campaigns and exchange
/// rates, so a role with none of these rights is refused up front; each line is then checked
/// like its mutation (FINANCE may import rates, and nothing else).
pub fn may_import(role: Role) -> bool {
    write(role, Write::Ingest).is_some()
        || write(role, Write::Campaigns).is_some()
        || write(role, Write::ExchangeRates).is_some()
}

/// What a root field of the API asks of the caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated caller (the resolver scopes what it returns).
    Anyone,
    Read(Read),
    Write(Write),
    /// A lead move: any role with transition rights.
    Transition,
}

/// Every root field of the API and what it needs. A `Query.x` or `Mutation.x` missing from
/// this table is refused to every role by the schema's gate (`graphql::gate`), so a new field
/// cannot leak before someone decides who may use it; `tests/operations.rs` checks the table
/// against the schema and every role against every field.
pub const OPERATIONS: &[(&str, Need)] = &[
    ("Query.me", Need::Anyone),
    ("Query.node", Need::Anyone),
    ("Query.campaign", Need::Read(Read::Campaigns)),
    ("Query.campaigns", Need::Read(Read::Campaigns)),
    ("Query.lead", Need::Read(Read::Leads)),
    ("Query.leads", Need::Read(Read::Leads)),
    ("Query.opportunity", Need::Read(Read::Opportunities)),
    ("Query.opportunities", Need::Read(Read::Opportunities)),
    ("Query.attribution", Need::Read(Read::Campaigns)),
    ("Query.campaignRoi", Need::Read(Read::Campaigns)),
    ("Query.attributionComparison", Need::Read(Read::Campaigns)),
    ("Query.compensationStatement", Need::Read(Read::Statements)),
    ("Query.auditLog", Need::Read(Read::AuditLog)),
    ("Query.scoringRules", Need::Read(Read::LeadDefinition)),
    ("Query.mqlThreshold", Need::Read(Read::LeadDefinition)),
    ("Query.scoringCalibration", Need::Read(Read::Campaigns)),
    ("Query.funnel", Need::Read(Read::Campaigns)),
    ("Query.leakage", Need::Read(Read::Leakage)),
    // Accounts follow the leads' rules (SPEC §8); the account funnel is a report like the
    // lead funnel; the MQA settings are part of the shared lead definition.
    ("Query.account", Need::Read(Read::Leads)),
    ("Query.accounts", Need::Read(Read::Leads)),
    ("Query.accountFunnel", Need::Read(Read::Campaigns)),
    ("Query.mqaSettings", Need::Read(Read::LeadDefinition)),
    ("Mutation.upsertUser", Need::Write(Write::Ingest)),
    ("Mutation.upsertCampaign", Need::Write(Write::Campaigns)),
    ("Mutation.recordCampaignCost", Need::Write(Write::Campaigns)),
    ("Mutation.upsertLead", Need::Write(Write::Ingest)),
    ("Mutation.upsertAccount", Need::Write(Write::Ingest)),
    ("Mutation.setMqaSettings", Need::Write(Write::Scoring)),
    ("Mutation.recordTouchpoint", Need::Write(Write::Ingest)),
    ("Mutation.transitionLead", Need::Transition),
    ("Mutation.upsertOpportunity", Need::Write(Write::Ingest)),
    ("Mutation.closeOpportunity", Need::Write(Write::Ingest)),
    ("Mutation.recordRevenue", Need::Write(Write::Ingest)),
    (
        "Mutation.upsertCompensationPlan",
        Need::Write(Write::Compensation),
    ),
    (
        "Mutation.assignCompensationPlan",
        Need::Write(Write::Compensation),
    ),
    ("Mutation.closePeriod", Need::Write(Write::Compensation)),
    ("Mutation.reopenPeriod", Need::Write(Write::Compensation)),
    ("Mutation.upsertScoringRule", Need::Write(Write::Scoring)),
    ("Mutation.setMqlThreshold", Need::Write(Write::Scoring)),
    // Rates are market data, no one's personal data: any signed-in caller reads them.
    ("Query.exchangeRates", Need::Anyone),
    // Custom models are part of the shared definitions, like the scoring rules.
    ("Query.attributionModels", Need::Read(Read::LeadDefinition)),
    (
        "Mutation.upsertAttributionModel",
        Need::Write(Write::AttributionModels),
    ),
    (
        "Mutation.upsertExchangeRate",
        Need::Write(Write::ExchangeRates),
    ),
];

/// Whether `role` may call the root field `"Type.field"` at all (scopes narrow it further).
/// A field the table does not name is denied.
pub fn may_call(role: Role, operation: &str) -> bool {
    let Some((_, need)) = OPERATIONS.iter().find(|(name, _)| *name == operation) else {
        return false;
    };
    match *need {
        Need::Anyone => true,
        Need::Read(what) => read(role, what) != Scope::None,
        Need::Write(what) => write(role, what) != Scope::None,
        Need::Transition => transitions(role) != TransitionRights::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::ROLES;

    #[test]
    fn a_field_the_table_does_not_name_is_denied_to_everyone() {
        for role in ROLES {
            assert!(!may_call(role, "Query.somethingNew"));
            assert!(may_call(role, "Query.me"));
        }
    }

    #[test]
    fn only_finance_and_admin_touch_compensation() {
        let allowed: Vec<Role> = ROLES
            .into_iter()
            .filter(|r| write(*r, Write::Compensation) == Scope::All)
            .collect();
        assert_eq!(allowed, vec![Admin, Finance]);
    }

    #[test]
    fn analysts_and_finance_never_see_lead_personal_data() {
        assert_eq!(read(Analyst, Read::LeadPersonalData), Scope::None);
        assert_eq!(read(Finance, Read::LeadPersonalData), Scope::None);
        assert_eq!(read(Analyst, Read::UserEmail), Scope::None);
    }
}
