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
