//! The command line: serve, migrate, demo, token, export-schema.

use std::net::TcpListener;

use clap::{Parser, Subcommand};

use crate::auth::{self, Caller, Role, Verifier};
use crate::config::{Config, Secret};
use crate::db::Db;
use crate::graphql::{self, Limits};
use crate::http::{self as server, AppState};

#[derive(Parser, Debug)]
#[command(
    name = "funnelgraph",
    version,
    about = "GraphQL API that puts marketing and sales on one set of numbers"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (migrations first).
    Serve {
        /// Without a configured JWT key: generate a random secret, print it once, and print a
        /// dev token per role. Never use in production.
        #[arg(long)]
        dev: bool,
        /// Load the demo company first when the database has no campaigns yet.
        #[arg(long)]
        demo: bool,
    },
    /// Apply the embedded migrations and exit.
    Migrate,
    /// Load the demo company into the configured database.
    Demo,
    /// Mint a signed HS256 token with FUNNELGRAPH_JWT_SECRET.
    Token {
        #[arg(long)]
        sub: String,
        #[arg(long)]
        role: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print the schema's SDL.
    ExportSchema,
    /// Write a synthetic company into the (empty) configured database, for benchmarks.
    Generate {
        /// small (10,000 leads), medium (100,000) or large (1,000,000).
        #[arg(long, default_value = "small")]
        scale: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Import NDJSON records (the `POST /import` format), or CSV rows of one record type with
    /// --type, from a file, as the CRM sync would, with progress on stderr and the summary
    /// (counts, refused lines) on stdout.
    Import {
        file: std::path::PathBuf,
        /// The file is CSV of this record type (lead, touchpoint, opportunity, ...), with a
        /// header row of its fields.
        #[arg(long = "type")]
        kind: Option<String>,
        /// A JSON file mapping the CSV's own headers to field names ("" ignores a column;
        /// with a mapping, columns it does not name and that are no field are ignored).
        #[arg(long = "map", requires = "kind")]
        map: Option<std::path::PathBuf>,
        /// Who the audit log names as the importer (role INTEGRATION).
        #[arg(long, default_value = "import-cli")]
        sub: String,
    },
    /// Time every report on the configured database, cold and warm.
    Bench {
        #[arg(long, default_value = "2026-04-01")]
        from: String,
        #[arg(long, default_value = "2026-07-01")]
        to: String,
        #[arg(long, default_value_t = 5)]
        iterations: usize,
        /// Also time a scoring-rule change (it writes a rule and re-scores every lead).
        #[arg(long)]
        rescore: bool,
        /// Only these report families (attribution, roi, handoff, statements); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Write a table to a file: `export credits` is the credit fact table (SPEC §11), as
    /// `GET /export/credits.parquet` and `.csv` serve it, with every campaign (the operator's
    /// view of the configured database).
    Export {
        #[command(subcommand)]
        what: ExportCommand,
    },
    /// Trusted documents (SPEC §11).
    Documents {
        #[command(subcommand)]
        what: DocumentsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCommand {
    /// The credit fact table: one row per (conversion or revenue event, eligible touch).
    Credits {
        /// parquet or csv.
        #[arg(long, default_value = "parquet")]
        format: String,
        /// The file to write (`-`: standard output).
        #[arg(long)]
        out: std::path::PathBuf,
        /// FIRST_TOUCH, LAST_TOUCH, LINEAR, POSITION_BASED, W_SHAPED, FULL_PATH, TIME_DECAY,
        /// MARKOV, SHAPLEY, J_SHAPED, INVERSE_J.
        #[arg(long, required_unless_present = "custom_model")]
        model: Option<String>,
        /// A custom model's key, in place of --model.
        #[arg(long, conflicts_with = "model")]
        custom_model: Option<String>,
        /// MARKOV's order (1, 2 or 3).
        #[arg(long)]
        markov_order: Option<i64>,
        #[arg(long, default_value = "WON")]
        stage: String,
        /// First day of the period (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// The day after the period (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        /// CONTACT_ROLES, PRIMARY_CONTACT or ACCOUNT.
        #[arg(long, default_value = "CONTACT_ROLES")]
        contacts: String,
        #[arg(long, default_value_t = 365)]
        lookback_days: i64,
        #[arg(long, default_value_t = 7.0)]
        half_life_days: f64,
    },
}

#[derive(Subcommand, Debug)]
pub enum DocumentsCommand {
    /// Build a trusted-documents manifest from `.graphql` files (each file one document, its
    /// text as written), checked against the schema; prints each file's id on stderr.
    Extract {
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Write the manifest here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    #[error("{0}")]
    Usage(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Refuses a database whose amounts are in another currency than the configured one (and
/// records the configured one in a database that has none yet).
fn claim_currency(db: &Db, config: &Config) -> Result<(), CliError> {
    let mut conn = db.get()?;
    crate::service::currency::claim(&mut conn, &config.currency)
        .map_err(|e| CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message())))
}

/// The setting under which `serve --dev` keeps its signing secret in the database.
const DEV_SECRET_SETTING: &str = "dev_jwt_secret";

/// The development secret of the configured database: made once by `serve --dev` and kept in
/// the database, so tokens printed by one run (or minted by `token`) verify after a restart.
/// `create` makes it when the database has none yet.
fn dev_secret(config: &Config, create: bool) -> Result<Option<Secret>, CliError> {
    let db = Db::connect(&config.database)?;
    db.migrate()?;
    let mut conn = db.get()?;
    let found = crate::repo::settings::get(&mut conn, DEV_SECRET_SETTING)
        .map_err(crate::db::DbError::Query)?;
    match found {
        Some(value) => Ok(Some(Secret::new(value))),
        None if create => {
            let value = format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            );
            crate::repo::settings::set(&mut conn, DEV_SECRET_SETTING, &value)
                .map_err(crate::db::DbError::Query)?;
            Ok(Some(Secret::new(value)))
        }
        None => Ok(None),
    }
}

/// Builds the verifier from the configuration, or says what is missing.
pub fn verifier(config: &Config, dev_secret: Option<&Secret>) -> Result<Verifier, CliError> {
    let jwks = match &config.jwt_jwks {
        Some(path) => {
            Some(auth::jwks::Jwks::load(path).map_err(|e| CliError::Usage(e.to_string()))?)
        }
        None => None,
    };
    let public = match &config.jwt_public_key {
        Some(path) => Some((
            path.clone(),
            std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {path}: {e}")))?,
        )),
        None => None,
    };
    let secret = config.jwt_secret.as_ref().or(dev_secret);
    if secret.is_none() && public.is_none() && jwks.is_none() {
        return Err(CliError::Usage(
            "refusing to start: no JWT key is configured; set FUNNELGRAPH_JWT_SECRET (HS256), FUNNELGRAPH_JWT_PUBLIC_KEY or FUNNELGRAPH_JWT_JWKS, or pass --dev".into(),
        ));
    }
    Verifier::new(
        secret.map(|s| s.expose().as_bytes()),
        public.as_ref().map(|(p, pem)| (p.as_str(), pem.as_slice())),
        jwks,
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
    )
    .map(|v| v.with_cache(std::time::Duration::from_millis(config.token_cache_ms)))
    .map_err(|e| CliError::Usage(e.to_string()))
}

/// Connects, migrates, and builds the shared server state.
pub fn state(config: &Config, verifier: Verifier) -> Result<AppState, CliError> {
    let mut db = Db::connect_with(
        &config.database,
        std::time::Duration::from_millis(config.slow_query_ms),
    )?;
    if let Some(replica) = &config.read_database {
        db = db.with_replica(replica)?;
        tracing::info!(replica = %replica.redacted(), "reads go to the replica, writes to the primary");
    }
    let applied = db.migrate()?;
    if applied > 0 {
        tracing::info!(applied, "applied migrations");
    }
    claim_currency(&db, config)?;
    let limits = Limits {
        introspection: config.introspection,
        ..Limits::default()
    };
    let schema = graphql::build_schema(limits);
    let document_limits = crate::graphql::precheck::DocumentLimits::default();
    // The built-in dashboard's documents are always trusted; the operator's manifest adds to
    // them.
    let refuse = |e: String| CliError::Usage(format!("refusing to start: trusted documents: {e}"));
    let mut trusted = crate::graphql::trusted::TrustedDocuments::parse(
        crate::http::assets::DASHBOARD_DOCUMENTS,
        &schema,
        document_limits,
    )
    .map_err(|e| refuse(format!("the dashboard's own: {e}")))?;
    trusted.only = config.trusted_only;
    if let Some(path) = &config.trusted_documents {
        trusted.extend(
            crate::graphql::trusted::TrustedDocuments::load(
                path,
                &schema,
                document_limits,
                config.trusted_only,
            )
            .map_err(refuse)?,
        );
    }
    tracing::info!(
        documents = trusted.len(),
        manifest = config
            .trusted_documents
            .as_deref()
            .unwrap_or("(the dashboard's only)"),
        trusted_only = trusted.only,
        "trusted documents loaded"
    );
    Ok(AppState {
        db,
        schema,
        verifier,
        currency: config.currency.clone(),
        max_body_bytes: config.max_body_bytes,
        document_limits,
        documents: Default::default(),
        metrics: Default::default(),
        request_timeout: std::time::Duration::from_millis(config.request_timeout_ms),
        reports: Default::default(),
        users: std::sync::Arc::new(crate::service::users::UserCache::new(
            std::time::Duration::from_millis(config.user_cache_ms),
        )),
        dev_tokens: Vec::new(),
        trusted: std::sync::Arc::new(trusted),
        // Two tables written at once, one per core; the next download waits its turn.
        exports: std::sync::Arc::new(tokio::sync::Semaphore::new(2)),
    })
}

/// A 24-hour token for each demo role: (role, token).
fn dev_tokens(secret: &Secret, config: &Config) -> Vec<(String, String)> {
    crate::demo::TOKEN_USERS
        .iter()
        .filter_map(|(sub, role)| {
            auth::mint_hs256(
                secret.expose().as_bytes(),
                sub,
                *role,
                24 * 3600,
                config.jwt_issuer.as_deref(),
                config.jwt_audience.as_deref(),
            )
            .ok()
            .map(|token| (role.as_str().to_string(), token))
        })
        .collect()
}

fn print_tokens(secret: &Secret, config: &Config, bind: &str) -> Vec<(String, String)> {
    println!("\nDev tokens (valid 24 h):");
    let tokens = dev_tokens(secret, config);
    for (role, token) in &tokens {
        println!("  {role:<18} {token}");
    }
    println!("\nTry it:");
    println!("  curl -s http://{bind}/graphql -H 'Content-Type: application/json' \\");
    println!("    -H \"Authorization: Bearer $TOKEN\" \\");
    println!("    -d '{{\"query\":\"{{ me {{ name role }} campaigns(first: 5) {{ totalCount nodes {{ externalId name channel cost {{ amount }} }} }} }}\"}}'");
    println!("  GraphiQL: http://{bind}/graphql (put the token in the Headers tab)");
    println!("  Dashboard: http://{bind}/ (one click per role)\n");
    tokens
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Generate { scale, seed } => generate_company(&config, scale, seed),
        Command::Import {
            file,
            kind,
            map,
            sub,
        } => import_file(&config, file, kind, map, sub).await,
        Command::Bench {
            from,
            to,
            iterations,
            rescore,
            only,
        } => bench(&config, from, to, iterations, rescore, only).await,
        Command::ExportSchema => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Command::Migrate => {
            let db = Db::connect(&config.database)?;
            let applied = db.migrate()?;
            println!(
                "{applied} migration(s) applied to {}",
                config.database.redacted()
            );
            Ok(())
        }
        Command::Token { sub, role, ttl } => mint_token(&config, sub, role, ttl),
        Command::Demo => load_demo(&config).await,
        Command::Serve { dev, demo } => serve(&config, dev, demo).await,
        Command::Export { what } => export(&config, what).await,
        Command::Documents {
            what: DocumentsCommand::Extract { files, out },
        } => extract_documents(files, out),
    }
}

/// `funnelgraph export credits`.
async fn export(config: &Config, what: ExportCommand) -> Result<(), CliError> {
    let ExportCommand::Credits {
        format,
        out,
        model,
        custom_model,
        markov_order,
        stage,
        from,
        to,
        contacts,
        lookback_days,
        half_life_days,
    } = what;
    let format = crate::warehouse::Format::parse(&format)
        .ok_or_else(|| CliError::Usage(format!("--format {format}: use parquet or csv")))?;
    let app_error = |e: crate::service::AppError| {
        CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message()))
    };
    let ctx = command_context(config, "export-cli".into(), Role::Admin).await?;
    // The same arguments as the HTTP export's query string, read by the same code.
    let mut params = std::collections::HashMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(v) = value {
            params.insert(key.to_string(), v);
        }
    };
    put("model", model);
    put("customModel", custom_model);
    put("markovOrder", markov_order.map(|k| k.to_string()));
    put("stage", Some(stage));
    put("from", Some(from));
    put("to", Some(to));
    put("contacts", Some(contacts));
    put("lookbackDays", Some(lookback_days.to_string()));
    put("halfLifeDays", Some(half_life_days.to_string()));
    let started = std::time::Instant::now();
    let table = crate::http::export::prepare_credits(&ctx, &params)
        .await
        .map_err(app_error)?;
    let totals = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let totals = if out.as_os_str() == "-" {
            crate::warehouse::write(&table, format, std::io::BufWriter::new(std::io::stdout()))?
        } else {
            // Written beside and renamed when whole: a failure leaves no half a file.
            let mut partial = out.clone().into_os_string();
            partial.push(".partial");
            let partial = std::path::PathBuf::from(partial);
            let file = std::fs::File::create(&partial)?;
            let mut file = std::io::BufWriter::new(file);
            let written = crate::warehouse::write(&table, format, &mut file)
                .and_then(|totals| std::io::Write::flush(&mut file).map(|()| totals));
            drop(file);
            match written {
                Ok(totals) => {
                    std::fs::rename(&partial, &out)?;
                    totals
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            }
        };
        Ok((totals, table.currency.clone()))
    })
    .await
    .map_err(|e| CliError::Usage(format!("the export stopped: {e}")))??;
    let (totals, currency) = totals;
    eprintln!(
        "{} rows; conversions {}; amount {} {currency}; {:.1} s",
        totals.rows,
        crate::domain::money::format_units(
            i128::from(totals.weight),
            crate::service::credits::WEIGHT_DIGITS
        ),
        crate::domain::money::Money(totals.amount).to_decimal_string(&currency),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `funnelgraph documents extract`.
fn extract_documents(
    files: Vec<std::path::PathBuf>,
    out: Option<std::path::PathBuf>,
) -> Result<(), CliError> {
    let mut read = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        read.push((path.display().to_string(), text));
    }
    let schema = graphql::build_schema(Limits::default());
    let (manifest, ids) = crate::graphql::trusted::extract(&schema, &read)
        .map_err(|e| CliError::Usage(format!("not trusted:\n{e}")))?;
    match out {
        Some(path) => std::fs::write(&path, format!("{manifest}\n"))?,
        None => println!("{manifest}"),
    }
    for (name, id) in ids {
        eprintln!("{id}  {name}");
    }
    Ok(())
}

/// `funnelgraph generate`.
fn generate_company(config: &Config, scale: String, seed: u64) -> Result<(), CliError> {
    let scale: crate::generate::Scale = scale.parse().map_err(CliError::Usage)?;
    let db = Db::connect(&config.database)?;
    db.migrate()?;
    claim_currency(&db, config)?;
    let summary = crate::generate::generate(&db, scale, seed, |line| eprintln!("{line}"))
        .map_err(|e| CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message())))?;
    println!("{summary}");
    Ok(())
}

/// A command's use-case context on the configured database (migrated, its currency claimed),
/// acting as `sub` with `role`.
async fn command_context(
    config: &Config,
    sub: String,
    role: Role,
) -> Result<crate::service::Ctx, CliError> {
    let db = Db::connect_with(
        &config.database,
        std::time::Duration::from_millis(config.slow_query_ms),
    )?;
    db.migrate()?;
    claim_currency(&db, config)?;
    crate::service::Ctx::for_caller(
        db,
        Caller { sub, role },
        config.currency.clone(),
        Default::default(),
    )
    .await
    .map_err(|e| CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message())))
}

/// `funnelgraph import`.
async fn import_file(
    config: &Config,
    file: std::path::PathBuf,
    kind: Option<String>,
    map: Option<std::path::PathBuf>,
    sub: String,
) -> Result<(), CliError> {
    use std::io::Read;
    let app_error = |e: crate::service::AppError| {
        CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message()))
    };
    let ctx = command_context(config, sub, Role::Integration).await?;
    let total = std::fs::metadata(&file)?.len().max(1);
    let mut reader = std::fs::File::open(&file)?;
    let mut importer = match kind {
        None => crate::graphql::import::Importer::new(ctx, config.max_body_bytes),
        Some(kind) => {
            let mapping = match map {
                None => Default::default(),
                Some(path) => {
                    serde_json::from_str(&std::fs::read_to_string(&path)?).map_err(|e| {
                        CliError::Usage(format!(
                            "{}: a mapping is a JSON object of header names to field names ({e})",
                            path.display()
                        ))
                    })?
                }
            };
            crate::graphql::import::Importer::csv(ctx, config.max_body_bytes, &kind, mapping)
                .map_err(app_error)?
        }
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut read: u64 = 0;
    let started = std::time::Instant::now();
    let mut shown = std::time::Instant::now();
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        importer.feed(&buf[..n]).await.map_err(app_error)?;
        if shown.elapsed() >= std::time::Duration::from_millis(500) {
            shown = std::time::Instant::now();
            let lines = importer.summary.lines;
            let seconds = started.elapsed().as_secs_f64();
            // What is left at the pace so far, by bytes (records vary in size less than in
            // number per type).
            let eta = (total.saturating_sub(read)) as f64 * seconds / read.max(1) as f64;
            let done = (read * 30 / total) as usize;
            eprint!(
                "\rimport [{}{}] {:>3}%  {lines} records  {:.0} records/s  ETA {:.0} s   ",
                "#".repeat(done),
                " ".repeat(30 - done.min(30)),
                read * 100 / total,
                lines as f64 / seconds,
                eta
            );
        }
    }
    let summary = importer.finish().await.map_err(app_error)?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "\rimport 100%  {} records in {elapsed:.1} s = {:.0} records/s; {} applied, {} refused",
        summary.lines,
        summary.lines as f64 / elapsed.max(1e-9),
        summary.applied,
        summary.failed
    );
    println!(
        "{}",
        serde_json::to_string_pretty(&summary).map_err(|e| CliError::Usage(e.to_string()))?
    );
    Ok(())
}

/// `funnelgraph bench`.
async fn bench(
    config: &Config,
    from: String,
    to: String,
    iterations: usize,
    rescore: bool,
    only: Vec<String>,
) -> Result<(), CliError> {
    if let Some(bad) = only
        .iter()
        .find(|o| !crate::bench::SECTIONS.contains(&o.as_str()))
    {
        return Err(CliError::Usage(format!(
            "--only {bad}: one of {}",
            crate::bench::SECTIONS.join(", ")
        )));
    }
    let day = |s: &str| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| CliError::Usage(format!("{s} is not a date")))
    };
    let period = crate::domain::period::Period::new(day(&from)?, day(&to)?)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let db = Db::connect(&config.database)?;
    db.migrate()?;
    let lines = crate::bench::run(&db, &config.currency, period, iterations, &only)
        .await
        .map_err(|e| CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message())))?;
    for line in lines {
        println!("{line}");
    }
    if rescore {
        let line = crate::bench::rescore(&db, &config.currency)
            .await
            .map_err(|e| CliError::Usage(e.internal_detail().unwrap_or_else(|| e.message())))?;
        println!("{line}");
    }
    Ok(())
}

/// `funnelgraph token`.
fn mint_token(config: &Config, sub: String, role: String, ttl: i64) -> Result<(), CliError> {
    let role: Role = role.parse().map_err(CliError::Usage)?;
    let stored = match &config.jwt_secret {
        Some(_) => None,
        None => dev_secret(config, false)?,
    };
    let secret = config.jwt_secret.as_ref().or(stored.as_ref()).ok_or_else(|| {
        CliError::Usage(format!(
            "set FUNNELGRAPH_JWT_SECRET to mint tokens, or run `funnelgraph serve --dev` once on {} so it holds a development secret",
            config.database.redacted()
        ))
    })?;
    let token = auth::mint_hs256(
        secret.expose().as_bytes(),
        &sub,
        role,
        ttl,
        config.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{token}");
    Ok(())
}

/// `funnelgraph demo`.
async fn load_demo(config: &Config) -> Result<(), CliError> {
    let db = Db::connect(&config.database)?;
    db.migrate()?;
    claim_currency(&db, config)?;
    let summary = crate::demo::load(&db, &config.currency)
        .await
        .map_err(|e| {
            CliError::Usage(format!(
                "demo data: {}",
                e.internal_detail().unwrap_or_else(|| e.message())
            ))
        })?;
    println!("{summary}");
    if let Some(secret) = &config.jwt_secret {
        print_tokens(secret, config, &config.bind);
    }
    Ok(())
}

/// `funnelgraph serve`.
async fn serve(config: &Config, dev: bool, demo: bool) -> Result<(), CliError> {
    let dev_secret = if dev
        && config.jwt_secret.is_none()
        && config.jwt_public_key.is_none()
        && config.jwt_jwks.is_none()
    {
        let secret = dev_secret(config, true)?;
        eprintln!("\n!!! DEVELOPMENT MODE: no JWT key configured; using this database's development secret");
        eprintln!("!!! (kept in the database, so tokens survive a restart; `funnelgraph token` uses it too).");
        eprintln!("!!! Never run production like this: set FUNNELGRAPH_JWT_SECRET or FUNNELGRAPH_JWT_PUBLIC_KEY.\n");
        secret
    } else {
        None
    };
    let verifier = verifier(config, dev_secret.as_ref())?;
    let mut state = state(config, verifier)?;
    if demo {
        let summary = crate::demo::load_if_empty(&state.db, &config.currency)
            .await
            .map_err(|e| {
                CliError::Usage(format!(
                    "demo data: {}",
                    e.internal_detail().unwrap_or_else(|| e.message())
                ))
            })?;
        println!("{summary}");
    }
    if let Some(secret) = dev_secret.as_ref().or(config.jwt_secret.as_ref()) {
        if dev {
            let tokens = print_tokens(secret, config, &config.bind);
            // The dashboard's one-click sign-in only with the database's development secret:
            // tokens signed with a configured (production) key are printed, never served.
            if dev_secret.is_some() {
                state.dev_tokens = tokens;
            }
        }
    }
    let listener = TcpListener::bind(&config.bind)?;
    tracing::info!(
        database = %config.database.redacted(),
        "funnelgraph listening on http://{}/graphql",
        config.bind
    );
    server::start(listener, state)?.await?;
    Ok(())
}
