//! BI and warehouses (SPEC §11, issue 20): the credit fact table in Parquet and CSV, read back
//! by an independent reader (the `parquet` crate's record reader here; DuckDB in Python when it
//! is installed, as CI installs it) and summed against the attribution report of the same
//! arguments; the command line's file; and trusted documents.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use funnelgraph::auth::Role;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{json, Value};

const YEAR: &str = "from=2026-01-01&to=2027-01-01";

fn with_demo(app: &TestApp) {
    actix_web::rt::System::new()
        .block_on(funnelgraph::demo::load(&app.db, "USD"))
        .map_err(|e| e.message())
        .unwrap();
}

/// Minor units of a `Money` amount ("1234.56" → 123456).
fn minor(v: &Value) -> i64 {
    let text = v["amount"].as_str().unwrap();
    let negative = text.starts_with('-');
    let (int, frac) = text.trim_start_matches('-').split_once('.').unwrap();
    let units = int.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
    if negative {
        -units
    } else {
        units
    }
}

/// One row of the table as read back: column name → value as text ("" for null); decimals
/// as their unscaled integers.
type Row = BTreeMap<String, String>;

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "funnelgraph_{}_{}_{name}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reads a Parquet file with the `parquet` crate's record reader: its schema as (name,
/// physical type, logical type) and its rows.
fn read_parquet(bytes: &[u8]) -> (Vec<(String, String, String)>, Vec<Row>) {
    let path = temp_file("read.parquet", bytes);
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let schema = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| {
            (
                c.name().to_string(),
                format!("{:?}", c.physical_type()),
                format!("{:?}", c.logical_type_ref()),
            )
        })
        .collect();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        let mut out = Row::new();
        for (name, field) in row.get_column_iter() {
            let text = match field {
                Field::Null => String::new(),
                Field::Str(s) => s.clone(),
                Field::Long(v) => v.to_string(),
                Field::Int(v) => v.to_string(),
                Field::Date(d) => d.to_string(),
                Field::TimestampMicros(t) => t.to_string(),
                Field::Decimal(d) => i64::from_be_bytes(d.data().try_into().unwrap()).to_string(),
                other => panic!("unexpected field {name}: {other:?}"),
            };
            out.insert(name.clone(), text);
        }
        rows.push(out);
    }
    let _ = std::fs::remove_file(path);
    (schema, rows)
}

fn int(row: &Row, column: &str) -> i64 {
    row[column].parse().unwrap()
}

/// The attribution report of the same arguments: totals and each campaign's row.
struct Report {
    total_conversions: f64,
    total_revenue: i64,
    unattributed_conversions: f64,
    unattributed_revenue: i64,
    other_conversions: f64,
    other_revenue: i64,
    /// campaign externalId → (conversions, revenue).
    rows: BTreeMap<String, (f64, i64)>,
}

fn report(app: &TestApp, token: &str, args: &str) -> Report {
    let q = format!(
        "{{ attribution(period: {{from: \"2026-01-01\", to: \"2027-01-01\"}}, {args}) {{ rows {{ key conversions revenue {{ amount }} }} totalConversions totalRevenue {{ amount }} unattributedConversions unattributedRevenue {{ amount }} otherConversions otherRevenue {{ amount }} }} }}"
    );
    let v = app.gql_with(token, &q, json!({}));
    assert!(v.get("errors").is_none(), "{v}");
    let a = &v["data"]["attribution"];
    Report {
        total_conversions: a["totalConversions"].as_f64().unwrap(),
        total_revenue: minor(&a["totalRevenue"]),
        unattributed_conversions: a["unattributedConversions"].as_f64().unwrap(),
        unattributed_revenue: minor(&a["unattributedRevenue"]),
        other_conversions: a["otherConversions"].as_f64().unwrap(),
        other_revenue: minor(&a["otherRevenue"]),
        rows: a["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    (r["conversions"].as_f64().unwrap(), minor(&r["revenue"])),
                )
            })
            .collect(),
    }
}

const BILLION: i64 = 1_000_000_000;

/// The table's rows against the report: weights and amounts sum exactly to the totals, the
/// unattributed rows to the unattributed part, and each campaign's rows to its row (money
/// exactly, conversions to within a billionth per conversion).
fn assert_sums(rows: &[Row], r: &Report, what: &str) {
    let weight: i64 = rows.iter().map(|x| int(x, "weight")).sum();
    let amount: i64 = rows.iter().map(|x| int(x, "amount_minor")).sum();
    assert_eq!(
        weight,
        (r.total_conversions as i64) * BILLION,
        "{what}: Σ weight"
    );
    assert_eq!(r.total_conversions.fract(), 0.0);
    assert_eq!(amount, r.total_revenue, "{what}: Σ amount");
    let unattributed = |x: &&Row| {
        x["touchpoint"].is_empty() && x["campaign"].is_empty() && x["conversion_kind"] != "OTHER"
    };
    let un_w: i64 = rows
        .iter()
        .filter(unattributed)
        .map(|x| int(x, "weight"))
        .sum();
    let un_a: i64 = rows
        .iter()
        .filter(unattributed)
        .map(|x| int(x, "amount_minor"))
        .sum();
    assert_eq!(
        un_w,
        (r.unattributed_conversions as i64) * BILLION,
        "{what}: unattributed"
    );
    assert_eq!(un_a, r.unattributed_revenue, "{what}: unattributed revenue");
    let other = |x: &&Row| x["conversion_kind"] == "OTHER";
    let other_w: i64 = rows.iter().filter(other).map(|x| int(x, "weight")).sum();
    let other_a: i64 = rows
        .iter()
        .filter(other)
        .map(|x| int(x, "amount_minor"))
        .sum();
    assert_eq!(other_a, r.other_revenue, "{what}: other revenue");
    assert!(
        (other_w as f64 / BILLION as f64 - r.other_conversions).abs() < 1e-6,
        "{what}: other"
    );
    let mut by_campaign: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for x in rows.iter().filter(|x| !x["campaign"].is_empty()) {
        let e = by_campaign.entry(x["campaign"].clone()).or_default();
        e.0 += int(x, "weight");
        e.1 += int(x, "amount_minor");
        e.2 += 1;
    }
    assert_eq!(
        by_campaign.keys().collect::<Vec<_>>(),
        r.rows.keys().collect::<Vec<_>>(),
        "{what}: the same campaigns"
    );
    for (campaign, (w, a, n)) in &by_campaign {
        let (conversions, revenue) = r.rows[campaign];
        assert_eq!(*a, revenue, "{what}: {campaign}'s revenue");
        let off = (*w as f64 / BILLION as f64 - conversions).abs();
        assert!(
            off <= *n as f64 * 1e-9 + 1e-9,
            "{what}: {campaign}'s conversions off by {off}"
        );
    }
}

/// What DuckDB, a reader that shares no code with this crate, finds in a Parquet file:
/// (rows, Σ weight as text, Σ amount_minor, column types). None when Python has no duckdb
/// (CI installs it: there its absence fails the test).
fn duckdb(bytes: &[u8]) -> Option<(i64, String, i64, String)> {
    let has = std::process::Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and python3 has no duckdb: .ci/run installs it"
        );
        eprintln!(
            "\n*** SKIPPED: DuckDB read-back, python3 has no duckdb (pip install duckdb) ***\n"
        );
        return None;
    }
    let path = temp_file("duck.parquet", bytes);
    let script = format!(
        "import duckdb\nc = duckdb.connect()\nn, w, a = c.execute(\"SELECT count(*), CAST(sum(weight) AS VARCHAR), sum(amount_minor) FROM '{p}'\").fetchone()\ntypes = ','.join(f'{{r[0]}}:{{r[1]}}' for r in c.execute(\"DESCRIBE SELECT * FROM '{p}'\").fetchall())\nprint(n, w, a or 0, types, sep='|')",
        p = path.display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let parts: Vec<&str> = text.trim_end().split('|').collect();
    Some((
        parts[0].parse().unwrap(),
        parts[1].to_string(),
        parts[2].parse().unwrap(),
        parts[3].to_string(),
    ))
}

fn csv_rows(text: &str) -> Vec<Row> {
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            // The demo's ids and names hold no comma or quote.
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            let mut row = Row::new();
            for (h, c) in header.iter().zip(cells) {
                // As the Parquet reader gives them: the weight in billionths, the
                // amount as minor units.
                let value = match *h {
                    "weight" => c.replace('.', "").trim_start_matches('0').to_string(),
                    _ => c.to_string(),
                };
                row.insert(
                    h.to_string(),
                    if value.is_empty() && *h == "weight" {
                        "0".into()
                    } else {
                        value
                    },
                );
            }
            row
        })
        .collect()
}

both_databases! {
    fn the_credit_fact_table_sums_to_the_report_it_details(app) {
        with_demo(app);
        let analyst = app.token("ana", Role::Analyst);
        let cases = [
            ("model=W_SHAPED", "model: W_SHAPED"),
            ("model=LINEAR&stage=OPPORTUNITY", "model: LINEAR, stage: OPPORTUNITY"),
            ("model=TIME_DECAY&stage=MQL&halfLifeDays=3", "model: TIME_DECAY, stage: MQL, halfLifeDays: 3"),
            ("model=MARKOV", "model: MARKOV"),
            ("model=MARKOV&markovOrder=2&stage=SQL", "model: MARKOV, markovOrder: 2, stage: SQL"),
            ("model=SHAPLEY&stage=OPPORTUNITY", "model: SHAPLEY, stage: OPPORTUNITY"),
            // A short lookback leaves deals with no eligible touch: unattributed rows.
            ("model=FULL_PATH&contacts=ACCOUNT&lookbackDays=5", "model: FULL_PATH, contacts: ACCOUNT, lookbackDays: 5"),
        ];
        for (query, args) in cases {
            let path = format!("/export/credits.parquet?{YEAR}&{query}");
            let (status, kind, bytes) = app.get_bytes(&path, &analyst);
            assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&bytes));
            assert_eq!(kind, "application/vnd.apache.parquet");
            assert_eq!(&bytes[..4], b"PAR1");
            let (schema, rows) = read_parquet(&bytes);
            let names: Vec<&str> = schema.iter().map(|c| c.0.as_str()).collect();
            assert_eq!(names, funnelgraph::warehouse::COLUMNS, "{query}");
            let typed: BTreeMap<&str, (&str, &str)> =
                schema.iter().map(|c| (c.0.as_str(), (c.1.as_str(), c.2.as_str()))).collect();
            assert_eq!(typed["weight"].0, "INT64");
            assert!(typed["weight"].1.contains("Decimal") && typed["weight"].1.contains("scale: 9, precision: 18"), "{:?}", typed["weight"]);
            assert!(typed["amount"].1.contains("scale: 2, precision: 18"), "{:?}", typed["amount"]);
            let at = typed["converted_at"].1;
            assert!(at.contains("Timestamp") && at.contains("true") && at.contains("MICROS"), "{at}");
            assert!(typed["booked_on"].1.contains("Date"));
            assert!(typed["campaign"].1.contains("String"));
            assert!(!rows.is_empty(), "{query}: no rows");
            let r = report(app, &analyst, args);
            assert_sums(&rows, &r, query);
            if query.contains("lookbackDays=5") {
                assert!(r.unattributed_revenue != 0 && r.unattributed_conversions > 0.0);
                let un: Vec<&Row> = rows.iter().filter(|x| x["touchpoint"].is_empty()).collect();
                // One row per unattributed conversion (weight 1) or revenue event (its
                // whole amount), naming the deal's primary contact.
                assert!(un.iter().all(|x| !x["lead"].is_empty() && x["campaign"].is_empty()));
                assert!(un.iter().filter(|x| x["conversion_kind"] == "OPPORTUNITY").all(|x| x["weight"] == "1000000000"));
                assert!(un.iter().filter(|x| x["conversion_kind"] == "REVENUE").all(|x| x["weight"] == "0"));
            }
            // Every row names the model and the stage; a revenue row carries no weight and
            // a lead-stage row no money.
            let stage = query.split("stage=").nth(1).map_or("WON", |s| s.split('&').next().unwrap());
            for x in &rows {
                assert_eq!(x["stage"], stage);
                assert_eq!(x["currency"], "USD");
                if x["conversion_kind"] == "REVENUE" {
                    assert_eq!(x["weight"], "0");
                    assert!(!x["revenue_event"].is_empty() && !x["booked_on"].is_empty());
                }
                if x["conversion_kind"] == "LEAD" {
                    assert_eq!(x["amount_minor"], "0");
                    assert_eq!(x["conversion_id"], x["lead"]);
                }
                assert_eq!(x["amount"], x["amount_minor"], "the decimal holds the same units");
            }
            let model = rows[0]["model"].clone();
            assert!(query.contains(&format!("model={}", model.split(':').next().unwrap())), "{model}");
            if query.contains("markovOrder=2") {
                assert_eq!(model, "MARKOV:order2");
            }
            // The same table as CSV: the same rows in the same order.
            let (status, csv) = app.get_with_auth(&format!("/export/credits.csv?{YEAR}&{query}"), &analyst);
            assert_eq!(status, 200);
            let from_csv = csv_rows(&csv);
            assert_eq!(from_csv.len(), rows.len(), "{query}: CSV rows");
            for (c, p) in from_csv.iter().zip(&rows) {
                for column in ["conversion_kind", "conversion_id", "touchpoint", "campaign", "lead", "weight", "amount_minor"] {
                    assert_eq!(c[column], p[column], "{query}: {column}");
                }
            }
            // An independent reader agrees.
            if let Some((n, w, a, types)) = duckdb(&bytes) {
                assert_eq!(n as usize, rows.len());
                assert_eq!(w, format!("{}.000000000", r.total_conversions as i64), "{query}: DuckDB Σ weight");
                assert_eq!(a, r.total_revenue);
                assert!(types.contains("weight:DECIMAL(18,9)") && types.contains("amount:DECIMAL(18,2)") && types.contains("converted_at:TIMESTAMP WITH TIME ZONE"), "{types}");
            }
        }
        // WON: every revenue event's rows sum to its amount, and a won deal's conversion
        // rows to one conversion.
        let (_, _, bytes) = app.get_bytes(&format!("/export/credits.parquet?{YEAR}&model=POSITION_BASED"), &analyst);
        let (_, rows) = read_parquet(&bytes);
        let mut events: BTreeMap<String, i64> = BTreeMap::new();
        let mut wins: BTreeMap<String, i64> = BTreeMap::new();
        for x in &rows {
            match x["conversion_kind"].as_str() {
                "REVENUE" => *events.entry(x["revenue_event"].clone()).or_default() += int(x, "amount_minor"),
                "OPPORTUNITY" => *wins.entry(x["opportunity"].clone()).or_default() += int(x, "weight"),
                k => panic!("{k}"),
            }
        }
        assert!(wins.values().all(|w| *w == BILLION), "{wins:?}");
        let v = app.ok("{ opportunities(first: 500) { nodes { externalId revenue { externalId amount { amount } } } } }", json!({}));
        let booked: BTreeMap<String, i64> = v["opportunities"]["nodes"].as_array().unwrap().iter()
            .flat_map(|o| o["revenue"].as_array().unwrap().clone())
            .map(|e| (e["externalId"].as_str().unwrap().to_string(), minor(&e["amount"])))
            .collect();
        assert!(!events.is_empty());
        for (event, sum) in &events {
            assert_eq!(*sum, booked[event], "{event}");
        }
    }

    fn a_marketer_gets_own_campaigns_and_the_rest_aggregated(app) {
        with_demo(app);
        let mark = app.token("mark", Role::Marketer);
        let own: Vec<String> = app.gql_with(&mark, "{ campaigns(first: 100) { nodes { externalId } } }", json!({}))
            ["data"]["campaigns"]["nodes"].as_array().unwrap().iter()
            .map(|c| c["externalId"].as_str().unwrap().to_string()).collect();
        assert!(!own.is_empty());
        let (status, _, bytes) = app.get_bytes(&format!("/export/credits.parquet?{YEAR}&model=LINEAR"), &mark);
        assert_eq!(status, 200);
        let (_, rows) = read_parquet(&bytes);
        let r = report(app, &mark, "model: LINEAR");
        assert!(r.other_revenue != 0, "the demo's marketer does not own every campaign");
        assert_sums(&rows, &r, "MARKETER");
        let others: Vec<&Row> = rows.iter().filter(|x| x["conversion_kind"] == "OTHER").collect();
        assert_eq!(others.len(), 1);
        // Unattributed conversions come to a marketer as one aggregated row too.
        let (_, _, short) = app.get_bytes(&format!("/export/credits.parquet?{YEAR}&model=LINEAR&lookbackDays=5"), &mark);
        let (_, short) = read_parquet(&short);
        let r5 = report(app, &mark, "model: LINEAR, lookbackDays: 5");
        assert_sums(&short, &r5, "MARKETER, 5 days");
        let un: Vec<&Row> = short.iter().filter(|x| x["conversion_kind"] == "UNATTRIBUTED").collect();
        assert_eq!(un.len(), 1);
        assert_eq!(int(un[0], "amount_minor"), r5.unattributed_revenue);
        let mut per_campaign = std::collections::BTreeSet::new();
        for x in &rows {
            if x["campaign"].is_empty() {
                // Aggregates name nothing.
                assert!(x["touchpoint"].is_empty() && x["lead"].is_empty() && x["conversion_id"].is_empty());
            } else {
                assert!(own.contains(&x["campaign"]), "{x:?}");
            }
            // A marketer may not read opportunities or revenue: a deal's rows are summed per
            // campaign, naming no deal, event, lead, touch or instant (a weight beside an
            // amount would give the deal's amount away).
            for column in ["opportunity", "revenue_event", "conversion_id", "lead", "touchpoint", "converted_at", "booked_on"] {
                assert!(x[column].is_empty(), "{column}: {x:?}");
            }
            assert!(per_campaign.insert((x["conversion_kind"].clone(), x["campaign"].clone())), "one row per kind and campaign: {x:?}");
        }
        // Lead stages are the marketer's to see row by row (leads touched by own campaigns).
        let (_, _, mql) = app.get_bytes(&format!("/export/credits.parquet?{YEAR}&model=LINEAR&stage=MQL"), &mark);
        let (_, mql) = read_parquet(&mql);
        assert_sums(&mql, &report(app, &mark, "model: LINEAR, stage: MQL"), "MARKETER, MQL");
        assert!(mql.iter().any(|x| !x["touchpoint"].is_empty() && !x["lead"].is_empty()));
        assert!(mql.iter().filter(|x| !x["campaign"].is_empty()).all(|x| own.contains(&x["campaign"])));
        // Who may not read attribution gets nothing; bad arguments change nothing and say so.
        let (status, body) = app.get_with_auth(&format!("/export/credits.csv?{YEAR}&model=LINEAR"), &app.token("rep", Role::SalesRep));
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("FORBIDDEN"));
        // So does every export: the role before the arguments.
        let rep = app.token("rep", Role::SalesRep);
        for path in [
            "/export/credits.parquet?model=NOPE",
            "/export/attribution.csv?model=NOPE",
            "/export/comparison.csv?models=NOPE",
            "/export/statements.csv?from=nope",
        ] {
            let (status, body) = app.get_with_auth(path, &rep);
            assert_eq!(status, 403, "{path}: {body}");
        }
        let (status, body) = app.get(&format!("/export/credits.parquet?{YEAR}&model=LINEAR"));
        assert_eq!(status, 401);
        assert!(body.contains("UNAUTHENTICATED"));
        let admin = app.token("admin", Role::Admin);
        for (query, says) in [
            ("model=LINEAR&stage=LOST", "LOST"),
            ("model=NOPE", "NOPE"),
            ("stage=WON", "model"),
            ("model=LINEAR&markovOrder=2", "markovOrder"),
            ("model=LINEAR&customModel=x", "not both"),
        ] {
            let (status, body) = app.get_with_auth(&format!("/export/credits.parquet?{YEAR}&{query}"), &admin);
            assert_eq!(status, 400, "{query}: {body}");
            assert!(body.contains("BAD_USER_INPUT") && body.contains(says), "{query}: {body}");
        }
        let (status, body) = app.get_with_auth("/export/credits.csv?model=LINEAR&from=2026-02-01", &admin);
        assert_eq!(status, 400, "{body}");
    }

    fn the_command_line_writes_the_table_the_server_streams(app) {
        with_demo(app);
        let (_, _, served) = app.get_bytes(&format!("/export/credits.parquet?{YEAR}&model=W_SHAPED&stage=OPPORTUNITY"), &app.token("admin", Role::Admin));
        let out = std::env::temp_dir().join(format!("funnelgraph_cli_{}_{}.parquet", std::process::id(), rand::random::<u32>()));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .args(["export", "credits", "--format", "parquet", "--model", "W_SHAPED", "--stage", "OPPORTUNITY", "--from", "2026-01-01", "--to", "2027-01-01", "--out"])
            .arg(&out)
            .env("FUNNELGRAPH_DATABASE_URL", &app.url)
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let written = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        // The same snapshot, the same writer: the same bytes.
        assert_eq!(written, served);
        let summary = String::from_utf8_lossy(&run.stderr).to_string();
        let (_, rows) = read_parquet(&written);
        assert!(summary.starts_with(&format!("{} rows", rows.len())), "{summary}");
        // CSV to standard output; a bad format is refused.
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .args(["export", "credits", "--format", "csv", "--model", "LINEAR", "--from", "2026-01-01", "--to", "2027-01-01", "--out", "-"])
            .env("FUNNELGRAPH_DATABASE_URL", &app.url)
            .output()
            .unwrap();
        assert!(run.status.success());
        let text = String::from_utf8(run.stdout).unwrap();
        assert!(text.starts_with("conversion_kind,conversion_id,revenue_event,stage,"));
        let (_, served) = app.get_with_auth(&format!("/export/credits.csv?{YEAR}&model=LINEAR"), &app.token("admin", Role::Admin));
        assert_eq!(text, served);
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
            .args(["export", "credits", "--format", "xlsx", "--model", "LINEAR", "--from", "2026-01-01", "--to", "2027-01-01", "--out", "-"])
            .env("FUNNELGRAPH_DATABASE_URL", &app.url)
            .output()
            .unwrap();
        assert!(!run.status.success());
        assert!(String::from_utf8_lossy(&run.stderr).contains("use parquet or csv"));
    }
}

// ---- trusted documents ----

const ME: &str = "{ me { id role } }";
const CAMPAIGNS: &str = "query Campaigns($n: Int!) { campaigns(first: $n) { totalCount nodes { externalId } } }\nmutation Upsert($c: CampaignInput!) { upsertCampaign(input: $c) { externalId name } }\nmutation Two($a: CampaignInput!, $b: CampaignInput!) { a: upsertCampaign(input: $a) { externalId } b: upsertCampaign(input: $b) { externalId } }";

fn manifest(entries: &[(&str, &str)]) -> std::path::PathBuf {
    let map: serde_json::Map<String, Value> = entries
        .iter()
        .map(|(hash, text)| (hash.to_string(), Value::String(text.to_string())))
        .collect();
    temp_file("manifest.json", Value::Object(map).to_string().as_bytes())
}

fn id(text: &str) -> String {
    format!("sha256:{}", funnelgraph::graphql::trusted::sha256_hex(text))
}

fn post(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.post_raw(
        Some(&format!("Bearer {token}")),
        "application/json",
        &body.to_string(),
    )
}

fn trusted_server(only: bool) -> (TestApp, std::path::PathBuf) {
    let path = manifest(&[
        (&funnelgraph::graphql::trusted::sha256_hex(ME), ME),
        (&id(CAMPAIGNS), CAMPAIGNS),
    ]);
    let file = path.to_string_lossy().to_string();
    let app = TestApp::sqlite_with(&[
        ("FUNNELGRAPH_TRUSTED_DOCUMENTS", &file),
        (
            "FUNNELGRAPH_TRUSTED_ONLY",
            if only { "true" } else { "false" },
        ),
    ]);
    (app, path)
}

#[test]
fn a_known_document_id_runs_and_an_unknown_one_is_not_found() {
    let (app, path) = trusted_server(false);
    let token = app.token("admin", Role::Admin);
    let (status, v) = post(&app, &token, json!({ "documentId": id(ME) }));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["me"]["role"], "ADMIN");
    // Variables and the operation name select as with text; a mutation runs by POST.
    let campaign = json!({ "externalId": "c-trusted", "name": "Trusted", "channel": "email" });
    let (status, v) = post(
        &app,
        &token,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Upsert", "variables": { "c": campaign } }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["upsertCampaign"]["name"], "Trusted");
    let (_, v) = post(
        &app,
        &token,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Campaigns", "variables": { "n": 5 } }),
    );
    assert_eq!(v["data"]["campaigns"]["totalCount"], 1, "{v}");
    // A variable of the wrong type is still the client's error, at the field.
    let (_, v) = post(
        &app,
        &token,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Campaigns", "variables": { "n": "five" } }),
    );
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    // A trusted mutation is validated with its variables: a bad second input refuses the
    // whole request before the first root field writes.
    let bad = json!({ "externalId": "c-b", "name": 5, "channel": "email" });
    let good = json!({ "externalId": "c-a", "name": "A", "channel": "email" });
    let (_, v) = post(
        &app,
        &token,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Two", "variables": { "a": good, "b": bad } }),
    );
    assert_eq!(code(&v), "BAD_USER_INPUT", "{v}");
    assert!(v.get("data").is_none_or(Value::is_null), "{v}");
    let (_, v) = post(
        &app,
        &token,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Campaigns", "variables": { "n": 5 } }),
    );
    assert_eq!(
        v["data"]["campaigns"]["totalCount"], 1,
        "nothing written: {v}"
    );
    // Roles still hold: the gate and the resolvers run as for text.
    let rep = app.token("rep", Role::SalesRep);
    let (_, v) = post(
        &app,
        &rep,
        json!({ "documentId": id(CAMPAIGNS), "operationName": "Upsert", "variables": { "c": campaign } }),
    );
    assert_eq!(code(&v), "FORBIDDEN", "{v}");
    // GET names a document too; a mutation by GET is refused.
    let (status, body) = app.get_with_auth(&format!("/graphql?documentId={}", id(ME)), &token);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"role\":\"ADMIN\""));
    let (status, _) = app.get_with_auth(
        &format!("/graphql?documentId={}&operationName=Upsert", id(CAMPAIGNS)),
        &token,
    );
    assert_eq!(status, 405);
    // An Apollo client's hash, without text, names a document as well.
    let hash = funnelgraph::graphql::trusted::sha256_hex(ME);
    let (_, v) = post(
        &app,
        &token,
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } }),
    );
    assert_eq!(v["data"]["me"]["role"], "ADMIN", "{v}");
    // Unknown: HTTP 400, PERSISTED_QUERY_NOT_FOUND.
    let unknown = id("{ me { name } }");
    let (status, v) = post(&app, &token, json!({ "documentId": unknown }));
    assert_eq!(status, 400);
    assert_eq!(code(&v), "PERSISTED_QUERY_NOT_FOUND");
    let (status, v) = post(&app, &token, json!({ "documentId": "sha256:not-hex" }));
    assert_eq!(
        (status, code(&v)),
        (400, "PERSISTED_QUERY_NOT_FOUND".to_string())
    );
    // Not trusted-only: free text still runs; text and an id together are refused.
    let (_, v) = post(&app, &token, json!({ "query": "{ me { name } }" }));
    assert!(v["data"]["me"]["name"].is_string(), "{v}");
    let (status, v) = post(&app, &token, json!({ "query": ME, "documentId": id(ME) }));
    assert_eq!(
        (status, code(&v)),
        (400, "BAD_USER_INPUT".to_string()),
        "{v}"
    );
    // Without a token nothing runs, trusted or not.
    let (status, _) = app.post_raw(
        None,
        "application/json",
        &json!({ "documentId": id(ME) }).to_string(),
    );
    assert_eq!(status, 401);
    drop(app);
    let _ = std::fs::remove_file(path);
}

#[test]
fn trusted_only_mode_refuses_free_text() {
    let (app, path) = trusted_server(true);
    let token = app.token("admin", Role::Admin);
    let (status, v) = post(&app, &token, json!({ "query": ME }));
    assert_eq!(status, 400, "{v}");
    assert_eq!(code(&v), "PERSISTED_QUERY_NOT_FOUND");
    // Even the same text as a trusted document: only ids run.
    let (status, _) = app.get_with_auth(
        "/graphql?query=%7B%20me%20%7B%20id%20role%20%7D%20%7D",
        &token,
    );
    assert_eq!(status, 400);
    let (status, v) = post(&app, &token, json!({ "documentId": id(ME) }));
    assert_eq!(status, 200);
    assert_eq!(v["data"]["me"]["role"], "ADMIN");
    drop(app);
    let _ = std::fs::remove_file(path);
}

/// The server's start-up with a manifest: its error, or None when it starts.
fn start_error(entries: &[(&str, &str)], only: Option<&str>) -> Option<String> {
    let path = manifest(entries);
    let file = path.to_string_lossy().to_string();
    let db = std::env::temp_dir().join(format!(
        "funnelgraph_trusted_{}_{}.db",
        std::process::id(),
        rand::random::<u32>()
    ));
    let db_url = db.to_string_lossy().to_string();
    let config = funnelgraph::config::Config::from_lookup(|name| match name {
        "FUNNELGRAPH_DATABASE_URL" => Some(db_url.clone()),
        "FUNNELGRAPH_JWT_SECRET" => Some(SECRET.to_string()),
        "FUNNELGRAPH_TRUSTED_DOCUMENTS" => Some(file.clone()),
        "FUNNELGRAPH_TRUSTED_ONLY" => only.map(str::to_string),
        _ => None,
    });
    let result = config.map_err(|e| e.to_string()).and_then(|config| {
        let verifier = funnelgraph::cli::verifier(&config, None).map_err(|e| e.to_string())?;
        funnelgraph::cli::state(&config, verifier)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let _ = std::fs::remove_file(path);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db_url}{suffix}"));
    }
    result.err()
}

#[test]
fn a_manifest_entry_that_does_not_match_its_text_stops_the_start() {
    let good = funnelgraph::graphql::trusted::sha256_hex(ME);
    assert_eq!(start_error(&[(&good, ME)], Some("true")), None);
    let wrong = funnelgraph::graphql::trusted::sha256_hex("{ me { id } }");
    let e = start_error(&[(&wrong, ME)], None).expect("refused");
    assert!(
        e.contains("refusing to start") && e.contains(&wrong) && e.contains("does not match"),
        "{e}"
    );
    let e = start_error(&[("abc", ME)], None).expect("refused");
    assert!(e.contains("64 digits"), "{e}");
    let bad = "{ nope }";
    let e = start_error(
        &[(&funnelgraph::graphql::trusted::sha256_hex(bad), bad)],
        None,
    )
    .expect("refused");
    assert!(e.contains("Unknown field \"nope\""), "{e}");
    // Its worst case is checked: every page at 500, nested, is over the complexity bound.
    let deep = "query($n: Int!) { campaigns(first: $n) { nodes { leads(first: $n) { nodes { externalId email } } } } }";
    let e = start_error(
        &[(&funnelgraph::graphql::trusted::sha256_hex(deep), deep)],
        None,
    )
    .expect("refused");
    assert!(e.contains("complexity"), "{e}");
    let config = funnelgraph::config::Config::from_lookup(|name| match name {
        "FUNNELGRAPH_TRUSTED_ONLY" => Some("maybe".into()),
        _ => None,
    });
    assert!(config
        .unwrap_err()
        .to_string()
        .contains("FUNNELGRAPH_TRUSTED_ONLY"));
}

#[test]
fn trusted_only_without_a_manifest_runs_the_dashboards_documents_only() {
    let app = TestApp::sqlite_with(&[("FUNNELGRAPH_TRUSTED_ONLY", "true")]);
    let token = app.token("admin", Role::Admin);
    let (status, v) = post(&app, &token, json!({ "query": ME }));
    assert_eq!(
        (status, code(&v)),
        (400, "PERSISTED_QUERY_NOT_FOUND".to_string())
    );
    // The dashboard's manifest, as the page reads it.
    let (status, manifest) = app.get("/assets/dashboard/documents.json");
    assert_eq!(status, 200);
    let manifest: BTreeMap<String, String> = serde_json::from_str(&manifest).unwrap();
    let hash = manifest.keys().next().unwrap().clone();
    let (status, v) = post(
        &app,
        &token,
        json!({ "documentId": format!("sha256:{hash}"), "operationName": "Me" }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["me"]["role"], "ADMIN");
}

#[test]
fn the_dashboards_manifest_is_its_documents_extracted() {
    let root = env!("CARGO_MANIFEST_DIR");
    let text =
        std::fs::read_to_string(format!("{root}/assets/dashboard/documents.graphql")).unwrap();
    let schema = funnelgraph::graphql::build_schema(Default::default());
    let (json, _) =
        funnelgraph::graphql::trusted::extract(&schema, &[("documents.graphql".into(), text)])
            .unwrap();
    let committed =
        std::fs::read_to_string(format!("{root}/assets/dashboard/documents.json")).unwrap();
    assert_eq!(
        json.trim(),
        committed.trim(),
        "assets/dashboard/documents.json is stale: run funnelgraph documents extract assets/dashboard/documents.graphql --out assets/dashboard/documents.json"
    );
}

#[test]
fn documents_extract_builds_the_manifest_the_server_loads() {
    let dir = std::env::temp_dir().join(format!(
        "funnelgraph_docs_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("me.graphql"), ME).unwrap();
    std::fs::write(dir.join("campaigns.graphql"), CAMPAIGNS).unwrap();
    let out = dir.join("manifest.json");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
        .args(["documents", "extract"])
        .arg(dir.join("me.graphql"))
        .arg(dir.join("campaigns.graphql"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let ids = String::from_utf8(run.stderr).unwrap();
    assert!(
        ids.contains(&format!("{}  ", id(ME))) && ids.contains(&id(CAMPAIGNS)),
        "{ids}"
    );
    let written: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written.len(), 2);
    assert_eq!(written[&funnelgraph::graphql::trusted::sha256_hex(ME)], ME);
    // The server loads it as it is.
    let file = out.to_string_lossy().to_string();
    let app = TestApp::sqlite_with(&[
        ("FUNNELGRAPH_TRUSTED_DOCUMENTS", &file),
        ("FUNNELGRAPH_TRUSTED_ONLY", "true"),
    ]);
    let (status, v) = post(
        &app,
        &app.token("admin", Role::Admin),
        json!({ "documentId": id(ME) }),
    );
    assert_eq!(status, 200, "{v}");
    // A document that does not validate is named and nothing is written.
    std::fs::write(dir.join("bad.graphql"), "{ campaigns { nope } }").unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_funnelgraph"))
        .args(["documents", "extract"])
        .arg(dir.join("bad.graphql"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("bad.graphql") && said.contains("nope"),
        "{said}"
    );
    assert!(run.stdout.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
