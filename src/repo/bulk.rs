//! Multi-row inserts, for loading synthetic data sets and batches of the import fast. Every
//! row type here inserts NULL for None (`treat_none_as_default_value = false`): diesel writes
//! one statement per row on SQLite when a row may hold DEFAULT.

use diesel::prelude::*;

use crate::db::schema::{
    account_attributes, accounts, audit_log, campaign_costs, campaigns, lead_attributes, leads,
    opportunities, opportunity_contacts, revenue_events, stage_transitions, touchpoints, users,
};
use crate::db::{AnyConnection, Backend};
use crate::repo::audit::NewAudit;
use crate::repo::campaigns::{CampaignRow, CostRow};
use crate::repo::leads::{
    AttributeRow, LeadRow, NewTransition, TouchpointRow, TouchpointValues, TransitionRow,
};
use crate::repo::opportunities::{OpportunityRow, RevenueRow, RevenueValues};
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
bulk!(accounts, crate::repo::accounts::AccountRow, accounts::table);
bulk!(
    account_attributes,
    crate::repo::accounts::AccountAttributeRow,
    account_attributes::table
);
bulk!(campaigns, CampaignRow, campaigns::table);
bulk!(costs, CostRow, campaign_costs::table);
bulk!(leads, LeadRow, leads::table);
bulk!(touchpoints, TouchpointRow, touchpoints::table);
bulk!(transitions, TransitionRow, stage_transitions::table);
bulk!(opportunities, OpportunityRow, opportunities::table);
bulk!(revenue, RevenueRow, revenue_events::table);
bulk!(attributes, AttributeRow, lead_attributes::table);
bulk!(new_touchpoints, TouchpointValues<'_>, touchpoints::table);
bulk!(new_transitions, NewTransition<'_>, stage_transitions::table);
bulk!(audit, NewAudit<'_>, audit_log::table);
bulk!(new_revenue, RevenueValues<'_>, revenue_events::table);

/// Reserves `n` ids of `table` for rows about to be inserted with them, as n inserts one by one
/// would have taken them. PostgreSQL: from its sequence. SQLite: after the highest id it ever
/// gave (an AUTOINCREMENT table's `sqlite_sequence`), inside the write transaction that holds
/// the database's one write lock.
pub fn reserve_ids(conn: &mut AnyConnection, table: &str, n: usize) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let count = i64::try_from(n).unwrap_or(i64::MAX);
    match conn {
        AnyConnection::Postgresql(_) => {
            let mut ids: Vec<i64> = diesel::sql_query(format!(
                "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id \
                 FROM generate_series(1, $1)"
            ))
            .bind::<diesel::sql_types::BigInt, _>(count)
            .load::<Id>(conn)?
            .into_iter()
            .map(|r| r.id)
            .collect();
            ids.sort_unstable();
            Ok(ids)
        }
        AnyConnection::Sqlite(_) => {
            let last: Id = diesel::sql_query(format!(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0)) AS id"
            ))
            .get_result(conn)?;
            Ok((1..=count).map(|k| last.id + k).collect())
        }
    }
}

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
            "accounts",
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
