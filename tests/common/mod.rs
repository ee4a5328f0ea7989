//! Black-box test harness: a real server on a loopback port over a real database (a fresh
//! SQLite file, or a fresh PostgreSQL database dropped afterwards), driven over HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use funnelgraph::auth::{self, Role, Verifier};
use funnelgraph::config::Config;
use funnelgraph::db::Db;
use serde_json::{json, Value};

pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    )
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos % 1_000_000
}

pub fn pg_base() -> String {
    std::env::var("FUNNELGRAPH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub struct TestApp {
    pub base: String,
    pub db: Db,
    pub backend: &'static str,
    /// The server's report cache and journey index, for tests that compare it with the database.
    pub reports: std::sync::Arc<funnelgraph::service::cache::ReportCache>,
    /// The database's URL (a SQLite path or a PostgreSQL URL), for the command line.
    pub url: String,
    agent: ureq::Agent,
    handle: Option<actix_web::dev::ServerHandle>,
    thread: Option<JoinHandle<()>>,
    sqlite_path: Option<std::path::PathBuf>,
    pg_database: Option<String>,
}

impl TestApp {
    pub fn sqlite() -> TestApp {
        TestApp::sqlite_with(&[])
    }

    /// A SQLite server with extra `FUNNELGRAPH_*` settings.
    pub fn sqlite_with(env: &[(&str, &str)]) -> TestApp {
        let path = std::env::temp_dir().join(format!("{}.db", unique("funnelgraph_test")));
        let url = path.to_string_lossy().to_string();
        let mut app = TestApp::start(&url, "sqlite", env);
        app.sqlite_path = Some(path);
        app
    }

    /// A server over a fresh PostgreSQL database, or None (said loudly) when PostgreSQL is
    /// not reachable on a laptop. Under CI=true an unreachable PostgreSQL fails the test.
    pub fn postgres() -> Option<TestApp> {
        TestApp::postgres_with(&[])
    }

    /// A PostgreSQL server with extra `FUNNELGRAPH_*` settings (None when skipped).
    pub fn postgres_with(env: &[(&str, &str)]) -> Option<TestApp> {
        let admin_url = format!("{}/postgres", pg_base());
        let mut admin = match PgConnection::establish(&admin_url) {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("PostgreSQL is unreachable at {admin_url} and CI=true: {e}");
                }
                eprintln!("\n*** SKIPPED: PostgreSQL test, no server at {admin_url} ({e}) ***\n");
                return None;
            }
        };
        let name = unique("fg_test");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let url = format!("{}/{name}", pg_base());
        let mut app = TestApp::start(&url, "postgres", env);
        app.pg_database = Some(name);
        Some(app)
    }

    pub fn start(url: &str, backend: &'static str, env: &[(&str, &str)]) -> TestApp {
        let config = Config::from_lookup(|name| match name {
            "FUNNELGRAPH_DATABASE_URL" => Some(url.to_string()),
            "FUNNELGRAPH_JWT_SECRET" => Some(SECRET.to_string()),
            _ => env
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string()),
        })
        .expect("config");
        let verifier = funnelgraph::cli::verifier(&config, None).expect("verifier");
        let mut app = TestApp::start_with(config, verifier, backend);
        app.url = url.to_string();
        app
    }

    pub fn start_with(config: Config, verifier: Verifier, backend: &'static str) -> TestApp {
        let state = funnelgraph::cli::state(&config, verifier).expect("state");
        let db = state.db.clone();
        let reports = state.reports.clone();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = funnelgraph::http::start(listener, state).expect("server");
                tx.send(server.handle()).expect("handle");
                let _ = server.await;
            })
        });
        let handle = rx.recv().expect("server handle");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            db,
            backend,
            reports,
            url: String::new(),
            agent,
            handle: Some(handle),
            thread: Some(thread),
            sqlite_path: None,
            pg_database: None,
        };
        // Reports run on the journey index once it is loaded (`/ready`): wait for it, so the
        // tests exercise what a deployment serves.
        for _ in 0..200 {
            if app.get("/ready").0 == 200 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        app
    }

    pub fn token(&self, sub: &str, role: Role) -> String {
        auth::mint_hs256(SECRET.as_bytes(), sub, role, 3600, None, None).expect("token")
    }

    /// POSTs a GraphQL request with a bearer token; returns the status and the JSON body.
    pub fn post_raw(
        &self,
        auth_header: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> (u16, Value) {
        let mut req = self
            .agent
            .post(format!("{}/graphql", self.base))
            .header("Content-Type", content_type);
        if let Some(h) = auth_header {
            req = req.header("Authorization", h);
        }
        let mut resp = req.send(body).expect("request");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn gql_with(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, value) =
            self.post_raw(Some(&format!("Bearer {token}")), "application/json", &body);
        assert_eq!(status, 200, "unexpected status for {query}: {value}");
        value
    }

    /// Runs a query as a fresh user of `role`.
    pub fn as_role(&self, role: Role, query: &str, variables: Value) -> Value {
        self.gql_with(
            &self.token(&format!("test-{}", role.as_str().to_lowercase()), role),
            query,
            variables,
        )
    }

    pub fn admin(&self, query: &str, variables: Value) -> Value {
        self.as_role(Role::Admin, query, variables)
    }

    /// Runs a query as ADMIN and fails the test on any error.
    pub fn ok(&self, query: &str, variables: Value) -> Value {
        let v = self.admin(query, variables);
        assert!(v.get("errors").is_none(), "unexpected errors: {v}");
        v["data"].clone()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    }

    /// GETs `path` with a bearer token: the status, the content type and the body's bytes.
    pub fn get_bytes(&self, path: &str, token: &str) -> (u16, String, Vec<u8>) {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("request");
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .expect("body");
        (status, kind, body)
    }

    pub fn get_with_auth(&self, path: &str, token: &str) -> (u16, String) {
        let (status, _, body) = self.get_bytes(path, token);
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(true));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(path) = &self.sqlite_path {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.to_string_lossy()));
            }
        }
        if let Some(name) = &self.pg_database {
            if let Ok(mut admin) = PgConnection::establish(&format!("{}/postgres", pg_base())) {
                let _ =
                    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The first error's `extensions.code`.
pub fn code(v: &Value) -> String {
    v["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<no code>")
        .to_string()
}

/// Every test in the block runs twice: on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_databases {
    ($(fn $name:ident($app:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let app = $crate::common::TestApp::sqlite();
                    let $app = &app;
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let Some(app) = $crate::common::TestApp::postgres() else { return };
                    let $app = &app;
                    $body
                }
            )*
        }
    };
}

// ---- small fixture builders: each writes one thing through the API as ADMIN ----

pub fn user(app: &TestApp, ext: &str, role: &str) {
    app.ok(
        "mutation($i: UserInput!) { upsertUser(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "name": format!("User {ext}"), "email": format!("{ext}@corp.test"), "role": role } }),
    );
}

pub fn campaign(app: &TestApp, ext: &str, channel: &str, owner: Option<&str>) {
    app.ok(
        "mutation($i: CampaignInput!) { upsertCampaign(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "name": format!("Campaign {ext}"), "channel": channel, "ownerExternalId": owner } }),
    );
}

pub fn cost(app: &TestApp, ext: &str, campaign: &str, amount: &str, on: &str) {
    app.ok(
        "mutation($i: CampaignCostInput!) { recordCampaignCost(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "campaignExternalId": campaign, "amount": { "amount": amount, "currency": "USD" }, "incurredOn": on } }),
    );
}

pub fn lead(app: &TestApp, ext: &str, created_at: &str) {
    app.ok(
        "mutation($i: LeadInput!) { upsertLead(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "email": format!("{}@example.com", ext.to_lowercase()), "fullName": format!("Person {ext}"), "company": "Acme", "createdAt": created_at } }),
    );
}

pub fn touch(app: &TestApp, ext: &str, lead: &str, campaign: &str, at: &str) {
    app.ok(
        "mutation($i: TouchpointInput!) { recordTouchpoint(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "leadExternalId": lead, "campaignExternalId": campaign, "kind": "form_fill", "occurredAt": at } }),
    );
}

pub const MOVE: &str = "mutation($i: TransitionInput!) { transitionLead(input: $i) { stage } }";

/// Moves a lead as ADMIN; returns the whole response.
pub fn move_lead(app: &TestApp, lead: &str, to: &str, at: &str) -> Value {
    app.admin(
        MOVE,
        json!({ "i": { "leadExternalId": lead, "to": to, "occurredAt": at } }),
    )
}

pub fn opportunity(
    app: &TestApp,
    ext: &str,
    primary: &str,
    contacts: &[&str],
    owner: Option<&str>,
    amount: &str,
    at: &str,
) {
    app.ok(
        "mutation($i: OpportunityInput!) { upsertOpportunity(input: $i) { id } }",
        json!({ "i": { "externalId": ext, "name": format!("Deal {ext}"), "primaryContactExternalId": primary, "contactExternalIds": contacts, "ownerExternalId": owner, "amount": { "amount": amount, "currency": "USD" }, "createdAt": at } }),
    );
}

pub fn close(app: &TestApp, ext: &str, won: bool, at: &str) -> Value {
    app.admin(
        "mutation($i: CloseOpportunityInput!) { closeOpportunity(input: $i) { status } }",
        json!({ "i": { "externalId": ext, "won": won, "closedAt": at } }),
    )
}

pub fn revenue(app: &TestApp, ext: &str, opp: &str, amount: &str, on: &str) -> Value {
    app.admin(
        "mutation($i: RevenueInput!) { recordRevenue(input: $i) { amount { amount currency } bookedOn } }",
        json!({ "i": { "externalId": ext, "opportunityExternalId": opp, "amount": { "amount": amount, "currency": "USD" }, "bookedOn": on } }),
    )
}

pub fn stage_of(app: &TestApp, lead: &str) -> String {
    app.ok(
        "query($e: String!) { lead(externalId: $e) { stage } }",
        json!({ "e": lead }),
    )["lead"]["stage"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Cents of a decimal amount.
pub fn cents(amount: &str) -> i64 {
    let negative = amount.starts_with('-');
    let (units, fraction) = amount
        .trim_start_matches('-')
        .split_once('.')
        .unwrap_or((amount, "0"));
    let value =
        units.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}").parse::<i64>().unwrap();
    if negative {
        -value
    } else {
        value
    }
}
