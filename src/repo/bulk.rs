//! Multi-row inserts with explicit ids, for loading synthetic data sets fast.

use diesel::prelude::*;

use crate::db::schema::{
    campaign_costs, campaigns, leads, opportunities, opportunity_contacts, revenue_events,
    stage_transitions, touchpoints, users,
};
use crate::db::{AnyConnection, Backend};
use crate::repo::campaigns::{CampaignRow, CostRow};
use crate::repo::leads::{LeadRow, TouchpointRow, TransitionRow};
use crate::repo::opportunities::{OpportunityRow, RevenueRow};
use crate::repo::users::UserRow;

/// Rows per INSERT statement: well under both databases' bind-parameter limits.
const ROWS: usize = 500;

macro_rules! bulk {
    ($name:ident, $row:ty, $table:path) => {
        pub fn $name(conn: &mut AnyConnection, rows: &[$row]) -> QueryResult<()> {
            // Multi-row VALUES is dialect-specific in diesel, so each backend runs its own.
            for chunk in rows.chunks(ROWS) {
                match conn {
                    AnyConnection::Sqlite(c) => {
                        diesel::insert_into($table).values(chunk).execute(c)?
                    }
                    AnyConnection::Postgresql(c) => {
                        diesel::insert_into($table).values(chunk).execute(c)?
                    }
                };
            }
            Ok(())
        }
    };
}

bulk!(users, UserRow, users::table);
bulk!(campaigns, CampaignRow, campaigns::table);
bulk!(costs, CostRow, campaign_costs::table);
bulk!(leads, LeadRow, leads::table);
bulk!(touchpoints, TouchpointRow, touchpoints::table);
bulk!(transitions, TransitionRow, stage_transitions::table);
bulk!(opportunities, OpportunityRow, opportunities::table);
bulk!(revenue, RevenueRow, revenue_events::table);

pub fn contacts(conn: &mut AnyConnection, rows: &[(i64, i64, i32)]) -> QueryResult<()> {
    for chunk in rows.chunks(ROWS) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(o, l, p)| {
                (
                    opportunity_contacts::opportunity_id.eq(*o),
                    opportunity_contacts::lead_id.eq(*l),
                    opportunity_contacts::position.eq(*p),
                )
            })
            .collect();
        match conn {
            AnyConnection::Sqlite(c) => diesel::insert_into(opportunity_contacts::table)
                .values(values)
                .execute(c)?,
            AnyConnection::Postgresql(c) => diesel::insert_into(opportunity_contacts::table)
                .values(values)
                .execute(c)?,
        };
    }
    Ok(())
}

/// After explicit ids, PostgreSQL's sequences must continue past them.
pub fn fix_sequences(conn: &mut AnyConnection, backend: Backend) -> QueryResult<()> {
    if backend == Backend::Postgres {
        for table in [
            "users",
            "campaigns",
            "campaign_costs",
            "leads",
            "touchpoints",
            "stage_transitions",
            "opportunities",
            "revenue_events",
        ] {
            diesel::sql_query(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(1, (SELECT COALESCE(MAX(id), 0) FROM {table})))"
            ))
            .execute(conn)?;
        }
    }
    Ok(())
}
