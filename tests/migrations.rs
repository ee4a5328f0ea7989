//! The embedded migrations apply, revert completely, and apply again, on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use diesel_migrations::MigrationHarness;
use funnelgraph::db::{AnyConnection, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

fn up_down_up(app: &common::TestApp) {
    let mut conn = app.db.get().unwrap();
    let (applied, reverted, reapplied) = match &mut *conn {
        AnyConnection::Sqlite(c) => (
            c.applied_migrations().unwrap().len(),
            c.revert_all_migrations(SQLITE_MIGRATIONS).unwrap().len(),
            c.run_pending_migrations(SQLITE_MIGRATIONS).unwrap().len(),
        ),
        AnyConnection::Postgresql(c) => (
            c.applied_migrations().unwrap().len(),
            c.revert_all_migrations(POSTGRES_MIGRATIONS).unwrap().len(),
            c.run_pending_migrations(POSTGRES_MIGRATIONS).unwrap().len(),
        ),
    };
    assert!(applied > 0);
    assert_eq!(reverted, applied);
    assert_eq!(reapplied, applied);
}

both_databases! {
    fn schema_rs_matches_the_migrated_database(app) {
        let declared = declared_schema();
        assert!(declared.len() >= 10, "{declared:?}");
        let migrated = migrated_schema(app);
        assert_eq!(
            declared.keys().collect::<Vec<_>>(),
            migrated.keys().collect::<Vec<_>>(),
            "tables in src/db/schema.rs vs the migrated database"
        );
        for (table, columns) in &declared {
            assert_eq!(columns, &migrated[table], "columns of {table} (name -> nullable): schema.rs vs database");
        }
    }

    fn migrations_go_up_down_and_up_again(app) {
        up_down_up(app);
        common::lead(app, "L1", "2026-01-01T00:00:00Z");
        assert_eq!(common::stage_of(app, "L1"), "INQUIRY");
    }
}

#[test]
fn both_dialects_have_the_same_migrations() {
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

/// `src/db/schema.rs` (what the code compiles against) read as text: table → column →
/// nullable.
fn declared_schema() -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>>
{
    let text = std::fs::read_to_string(format!("{}/src/db/schema.rs", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let mut tables = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") || line.starts_with("///") {
            continue;
        }
        match &current {
            None => {
                // `name (pk) {`
                if let Some((name, rest)) = line.split_once(" (") {
                    if rest.ends_with(") {") && !name.contains(' ') {
                        current = Some(name.to_string());
                        tables.insert(name.to_string(), std::collections::BTreeMap::new());
                    }
                }
            }
            Some(table) => {
                if line == "}" {
                    current = None;
                } else if let Some((column, ty)) = line.split_once(" -> ") {
                    tables
                        .get_mut(table)
                        .unwrap()
                        .insert(column.to_string(), ty.starts_with("Nullable<"));
                }
            }
        }
    }
    tables
}

#[derive(diesel::QueryableByName)]
struct Column {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    nullable: bool,
}

/// What the migrations made: table → column → nullable.
fn migrated_schema(
    app: &common::TestApp,
) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, bool>> {
    use diesel::RunQueryDsl;
    let mut conn = app.db.get().unwrap();
    let columns: Vec<Column> = match &mut *conn {
        AnyConnection::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, (p.\"notnull\" = 0 AND p.pk = 0) AS nullable
             FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '__diesel%'",
        )
        .load(c)
        .unwrap(),
        AnyConnection::Postgresql(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, (is_nullable = 'YES') AS nullable
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name NOT LIKE '__diesel%'",
        )
        .load(c)
        .unwrap(),
    };
    let mut tables = std::collections::BTreeMap::new();
    for c in columns {
        tables
            .entry(c.table_name)
            .or_insert_with(std::collections::BTreeMap::new)
            .insert(c.column_name, c.nullable);
    }
    tables
}
