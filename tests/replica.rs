//! Read replicas (issue 7): a PostgreSQL primary and a streaming replica started on loopback
//! (`initdb`, `pg_basebackup -R`, as the `postgres` user). With FUNNELGRAPH_DATABASE_READ_URL
//! set, reads go to the replica and writes to the primary, and a request that writes reads its
//! own writes. The proof: with replay paused on the replica, a mutation's own answer shows
//! what it wrote while the next query, served by the replica, does not yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_basebackup").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL tool as the `postgres` user.
fn pg(bin: &Path, tool: &str, args: &[&str]) -> std::process::Output {
    let program = bin.join(tool);
    let output = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&program)
            .args(args)
            .output()
    } else {
        Command::new(&program).args(args).output()
    }
    .unwrap();
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    bin: PathBuf,
    root: PathBuf,
    primary: u16,
    replica: u16,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("initdb/pg_basebackup not found under /usr/lib/postgresql and CI=true");
            }
            eprintln!("\n*** SKIPPED: replica test, no PostgreSQL server binaries ***\n");
            return None;
        };
        let root = std::env::temp_dir().join(format!("fg-replica-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        if is_root() {
            assert!(Command::new("chown")
                .args(["postgres:postgres", root.to_str().unwrap()])
                .status()
                .unwrap()
                .success());
        }
        let (primary, replica) = (free_port(), free_port());
        let dir = |name: &str| root.join(name).to_string_lossy().to_string();
        let cluster = Cluster {
            bin: bin.clone(),
            root: root.clone(),
            primary,
            replica,
        };
        pg(
            &bin,
            "initdb",
            &[
                "-D",
                &dir("primary"),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nport = {primary}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nfsync = off\n",
            root.display()
        );
        append(&root.join("primary/postgresql.conf"), &conf);
        pg(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &dir("primary"),
                "-l",
                &dir("primary.log"),
                "-w",
                "start",
            ],
        );
        pg(
            &bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.to_string(),
                "-U",
                "postgres",
                "-D",
                &dir("replica"),
                "-R",
                "-X",
                "stream",
            ],
        );
        append(
            &root.join("replica/postgresql.conf"),
            &format!("\nport = {replica}\n"),
        );
        pg(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &dir("replica"),
                "-l",
                &dir("replica.log"),
                "-w",
                "start",
            ],
        );
        Some(cluster)
    }

    fn sql(&self, port: u16, database: &str, statement: &str) -> String {
        let out = pg(
            &self.bin,
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-c",
                statement,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for name in ["replica", "primary"] {
            let dir = self.root.join(name).to_string_lossy().to_string();
            let program = self.bin.join("pg_ctl");
            let _ = if is_root() {
                Command::new("runuser")
                    .args(["-u", "postgres", "--"])
                    .arg(&program)
                    .args(["-D", &dir, "-m", "immediate", "stop"])
                    .output()
            } else {
                Command::new(&program)
                    .args(["-D", &dir, "-m", "immediate", "stop"])
                    .output()
            };
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const UPSERT: &str =
    "mutation($i: CampaignInput!) { upsertCampaign(input: $i) { externalId name } }";
const READ: &str = "query($e: String!) { campaign(externalId: $e) { externalId name } }";

#[test]
fn reads_go_to_the_replica_writes_to_the_primary_and_a_request_reads_its_own_writes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    cluster.sql(cluster.primary, "postgres", "CREATE DATABASE fg");
    wait_for("the database on the replica", || {
        cluster.sql(
            cluster.replica,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'fg'",
        ) == "1"
    });
    let primary_url = format!("postgres://postgres@127.0.0.1:{}/fg", cluster.primary);
    let replica_url = format!("postgres://postgres@127.0.0.1:{}/fg", cluster.replica);
    let app = TestApp::start(
        &primary_url,
        "postgres",
        &[("FUNNELGRAPH_DATABASE_READ_URL", &replica_url)],
    );

    // A write lands on the primary (the replica is read-only: a write there would fail) and
    // replicates.
    let v = app.ok(
        UPSERT,
        json!({ "i": { "externalId": "c1", "name": "First", "channel": "email" } }),
    );
    assert_eq!(v["upsertCampaign"]["name"], "First");
    assert_eq!(
        cluster.sql(cluster.primary, "fg", "SELECT count(*) FROM campaigns"),
        "1"
    );
    wait_for("c1 on the replica", || {
        app.ok(READ, json!({ "e": "c1" }))["campaign"] != Value::Null
    });

    // Replay paused: the replica stops following the primary.
    cluster.sql(cluster.replica, "fg", "SELECT pg_wal_replay_pause()");
    let reads_before = metric(&app, "funnelgraph_db_replica_reads_total");
    let v = app.ok(
        UPSERT,
        json!({ "i": { "externalId": "c2", "name": "Second", "channel": "event" } }),
    );
    assert_eq!(
        v["upsertCampaign"],
        json!({ "externalId": "c2", "name": "Second" }),
        "the mutation reads its own write"
    );
    assert_eq!(
        cluster.sql(cluster.primary, "fg", "SELECT count(*) FROM campaigns"),
        "2",
        "written to the primary"
    );
    assert_eq!(
        cluster.sql(cluster.replica, "fg", "SELECT count(*) FROM campaigns"),
        "1",
        "the paused replica lags"
    );
    // The next request reads from the replica, which does not have c2 yet.
    assert_eq!(
        app.ok(READ, json!({ "e": "c2" }))["campaign"],
        Value::Null,
        "served by the replica"
    );
    assert_eq!(
        app.ok(READ, json!({ "e": "c1" }))["campaign"]["name"],
        "First"
    );
    assert!(metric(&app, "funnelgraph_db_replica_reads_total") > reads_before);

    cluster.sql(cluster.replica, "fg", "SELECT pg_wal_replay_resume()");
    wait_for("c2 on the replica", || {
        app.ok(READ, json!({ "e": "c2" }))["campaign"] != Value::Null
    });
    drop(app);
    drop(cluster);
}

fn metric(app: &TestApp, name: &str) -> f64 {
    let (_, text) = app.get("/metrics");
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}
