//! Exports for finance and BI: statements, attribution and comparison as CSV, and the credit
//! fact table as Parquet or CSV, streamed.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{AppState, Authenticated, HttpError, RequestId};
use crate::service::AppError;

use crate::warehouse::csv_line;

fn csv_response(name: &str, body: String, rid: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("x-request-id", rid.to_string()))
        .body(body)
}

type Params = std::collections::HashMap<String, String>;

fn query_params(req: &HttpRequest) -> Params {
    web::Query::<Params>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

fn period_param(params: &Params) -> Result<crate::domain::period::Period, AppError> {
    let day = |name: &str| -> Result<chrono::NaiveDate, AppError> {
        let text = params.get(name).ok_or_else(|| {
            AppError::BadInput(format!("query parameter {name}=YYYY-MM-DD is required"))
        })?;
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| AppError::BadInput(format!("{name}={text} is not a date (YYYY-MM-DD)")))
    };
    crate::domain::period::Period::new(day("from")?, day("to")?)
        .map_err(|e| AppError::BadInput(e.to_string()))
}

/// `GET /export/statements.csv?from=&to=`: one row per statement line, for finance.
pub(super) async fn export_statements(
    req: HttpRequest,
    RequestId(rid): RequestId,
    Authenticated(ctx): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    let result = async {
        // The role first: who may not read statements learns nothing of the arguments.
        ctx.require_read(crate::auth::Read::Statements, "compensation statements")?;
        let period = period_param(&query_params(&req))?;
        crate::service::compensation::statements(&ctx, period).await
    }
    .await;
    let statements = result.map_err(|e| HttpError::app(&rid, e))?;
    let currency = &state.currency;
    let money = |c: Option<i64>| {
        c.map(|c| crate::domain::money::Money(c).to_decimal_string(currency))
            .unwrap_or_default()
    };
    let mut body = csv_line(
        &[
            "marketer",
            "period_from",
            "period_to",
            "status",
            "kind",
            "campaign",
            "opportunity",
            "basis",
            "rate",
            "amount",
            "currency",
            "description",
        ]
        .map(String::from),
    );
    for s in &statements {
        for l in &s.lines {
            body.push_str(&csv_line(&[
                s.user_external_id.clone(),
                s.from.to_string(),
                s.to.to_string(),
                s.status.as_str().to_string(),
                l.kind.clone(),
                l.campaign_external_id.clone().unwrap_or_default(),
                l.opportunity_external_id.clone().unwrap_or_default(),
                money(l.basis_cents),
                l.rate.clone().unwrap_or_default(),
                money(Some(l.amount_cents)),
                currency.clone(),
                l.description.clone(),
            ]));
        }
    }
    Ok(csv_response("statements.csv", body, &rid))
}

/// `GET /export/attribution.csv?model=&from=&to=&stage=&groupBy=` (`markovOrder=` with
/// MARKOV): a report's rows for BI.
pub(super) async fn export_attribution(
    req: HttpRequest,
    RequestId(rid): RequestId,
    Authenticated(ctx): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    use crate::service::attribution::report;
    let params = query_params(&req);
    let parsed = ctx
        .require_read(crate::auth::Read::Campaigns, "attribution")
        .and_then(|_| model_param(&params))
        .and_then(|model| report_query(&params, model));
    let result = match parsed {
        Ok(query) => report(&ctx, query).await,
        Err(e) => Err(e),
    };
    let r = result.map_err(|e| HttpError::app(&rid, e))?;
    let currency = &state.currency;
    let money = |c: i64| crate::domain::money::Money(c).to_decimal_string(currency);
    let mut body =
        csv_line(&["key", "campaign", "conversions", "revenue", "currency"].map(String::from));
    for row in &r.report.rows {
        let campaign = row
            .campaign_id
            .and_then(|id| r.campaigns.get(&id))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        body.push_str(&csv_line(&[
            row.key.clone(),
            campaign,
            row.conversions.to_decimal_string(),
            money(row.revenue),
            currency.clone(),
        ]));
    }
    if !r.report.other_conversions.is_zero() || r.report.other_revenue != 0 {
        body.push_str(&csv_line(&[
            "(other campaigns)".into(),
            String::new(),
            r.report.other_conversions.to_decimal_string(),
            money(r.report.other_revenue),
            currency.clone(),
        ]));
    }
    body.push_str(&csv_line(&[
        "(unattributed)".into(),
        String::new(),
        r.report.unattributed_conversions.to_string(),
        money(r.report.unattributed_revenue),
        currency.clone(),
    ]));
    Ok(csv_response("attribution.csv", body, &rid))
}

/// The model of an export: `model=` (with `markovOrder=` for MARKOV).
fn model_param(params: &Params) -> Result<crate::domain::attribution::Model, AppError> {
    params
        .get("model")
        .ok_or_else(|| {
            AppError::BadInput("query parameter model (e.g. W_SHAPED) is required".into())
        })
        .and_then(|m| m.parse().map_err(AppError::BadInput))
        .and_then(
            |model: crate::domain::attribution::Model| match params.get("markovOrder") {
                None => Ok(model),
                Some(k) => k
                    .parse::<i64>()
                    .map_err(|_| format!("markovOrder={k} is not a number"))
                    .and_then(|k| model.at_order(k))
                    .map_err(AppError::BadInput),
            },
        )
}

/// A model as an export's columns name it: the model, `MARKOV:order2` above order 1, or
/// `CUSTOM:key@version`.
pub(crate) async fn model_label(
    ctx: &crate::service::Ctx,
    model: crate::domain::attribution::Model,
) -> Result<String, AppError> {
    use crate::domain::attribution::Model;
    Ok(match model {
        Model::Custom(w) => match crate::service::models::describe(ctx, w.version).await? {
            Some((key, version)) => format!("CUSTOM:{key}@{version}"),
            None => "CUSTOM".to_string(),
        },
        Model::Markov(k) if k > 1 => format!("MARKOV:order{k}"),
        m => m.as_str().to_string(),
    })
}

/// The credit fact table an export or the command line asks for: `model` (or `customModel`
/// = a custom model's key), `markovOrder`, `stage`, `from`/`to`, `contacts`, `halfLifeDays`,
/// `lookbackDays`, made ready for the caller.
pub(crate) async fn prepare_credits(
    ctx: &crate::service::Ctx,
    params: &Params,
) -> Result<crate::service::credits::CreditExport, AppError> {
    // Who may not read attribution learns nothing, not even which arguments are good.
    ctx.require_read(crate::auth::Read::Campaigns, "the credit fact table")?;
    if params.contains_key("customModel") && params.contains_key("markovOrder") {
        return Err(AppError::BadInput(
            "markovOrder goes with model=MARKOV".into(),
        ));
    }
    let model = match (params.get("customModel"), params.get("model")) {
        (Some(_), Some(_)) => {
            return Err(AppError::BadInput(
                "ask for model or customModel, not both".into(),
            ))
        }
        (Some(key), None) => crate::service::models::current(ctx, key).await?,
        _ => model_param(params)?,
    };
    let query = report_query(params, model)?;
    let label = model_label(ctx, model).await?;
    crate::service::credits::prepare(ctx, query, label).await
}

/// Bytes written by the table's writer, handed to the response in chunks of about 256 KB; a
/// client that went away stops the writer at its next chunk.
struct ChunkSink {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
}

const CHUNK: usize = 256 * 1024;
const STALL: std::time::Duration = std::time::Duration::from_secs(120);

impl ChunkSink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut chunk = Ok(web::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK),
        )));
        // A client that reads nothing for STALL is given up on: its thread and snapshot are
        // not held for ever.
        let gave_up = std::time::Instant::now() + STALL;
        loop {
            match self.tx.try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the client went away",
                    ))
                }
                Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                    if std::time::Instant::now() > gave_up {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "the client read nothing for two minutes",
                        ));
                    }
                    chunk = back;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

impl std::io::Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /export/credits.parquet` and `GET /export/credits.csv` (SPEC §11): the credit fact
/// table, streamed. Every check (role, arguments) and the snapshot of the conversions happen
/// before the first byte, so a refusal is a plain error; a failure while writing (none is
/// expected) cuts the stream short, which no reader takes for a whole file.
pub(super) async fn export_credits(
    req: HttpRequest,
    RequestId(rid): RequestId,
    Authenticated(ctx): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    use crate::warehouse::Format;
    let format = if req.path().ends_with(".parquet") {
        Format::Parquet
    } else {
        Format::Csv
    };
    let params = query_params(&req);
    ctx.require_read(crate::auth::Read::Campaigns, "the credit fact table")
        .map_err(|e| HttpError::app(&rid, e))?;
    // At most two tables are made and written at once (each holds a thread, its snapshot and
    // its model's solve); the next download waits its turn before any of that.
    let permit =
        state.exports.clone().acquire_owned().await.map_err(|_| {
            HttpError::app(&rid, AppError::Internal("the export queue closed".into()))
        })?;
    let export = prepare_credits(&ctx, &params)
        .await
        .map_err(|e| HttpError::app(&rid, e))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    // A failure is handed to the body after its last chunk, never by a send that could wait
    // on a client that reads nothing.
    let failed: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let failure = failed.clone();
    let span_rid = rid.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = ChunkSink {
            buf: Vec::with_capacity(CHUNK),
            tx: tx.clone(),
        };
        // A panic is an error too: the stream must end in one, never look complete.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::warehouse::write(&export, format, &mut sink).and_then(|totals| {
                sink.send()?;
                Ok(totals)
            })
        }))
        .unwrap_or_else(|_| Err(std::io::Error::other("the writer panicked")));
        drop(sink);
        drop(tx);
        drop(permit);
        match written {
            Ok(totals) => tracing::info!(
                request_id = %span_rid,
                rows = totals.rows,
                "credit fact table written"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::info!(request_id = %span_rid, "credit fact table: the client went away")
            }
            Err(e) => {
                tracing::error!(request_id = %span_rid, error = %e, "credit fact table cut short");
                if let Ok(mut slot) = failure.lock() {
                    *slot = Some(e.to_string());
                }
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| match rx.poll_recv(cx) {
        // The writer is done: end in its error, if it had one, so the response is cut short.
        std::task::Poll::Ready(None) => std::task::Poll::Ready(
            failed
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .map(|message| Err(std::io::Error::other(message))),
        ),
        other => other,
    });
    let name = format!("credits.{}", format.extension());
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format.content_type()))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("x-request-id", rid))
        .streaming(body))
}

/// The report a CSV export asks for: `stage`, `from`/`to`, `groupBy`, `contacts`,
/// `halfLifeDays`, `lookbackDays`, `segment` (everything but the model).
fn report_query(
    params: &std::collections::HashMap<String, String>,
    model: crate::domain::attribution::Model,
) -> Result<crate::service::attribution::ReportQuery, AppError> {
    use crate::domain::report::Grouping;
    use crate::service::attribution::ReportQuery;
    let stage = params
        .get("stage")
        .map(String::as_str)
        .unwrap_or("WON")
        .parse()
        .map_err(AppError::BadInput)?;
    let grouping = match params
        .get("groupBy")
        .map(String::as_str)
        .unwrap_or("CAMPAIGN")
    {
        "CAMPAIGN" => Grouping::Campaign,
        "CHANNEL" => Grouping::Channel,
        "MONTH" => Grouping::Month,
        "ACCOUNT" => Grouping::Account,
        "SEGMENT" => Grouping::Segment,
        other => {
            return Err(AppError::BadInput(format!(
                "groupBy={other}: use CAMPAIGN, CHANNEL, MONTH, ACCOUNT or SEGMENT"
            )))
        }
    };
    let mapping = match params.get("contacts") {
        None => crate::domain::account::Mapping::ContactRoles,
        Some(m) => crate::domain::account::Mapping::parse(m).ok_or_else(|| {
            AppError::BadInput(format!(
                "contacts={m}: use CONTACT_ROLES, PRIMARY_CONTACT or ACCOUNT"
            ))
        })?,
    };
    let number = |name: &str, default: f64| -> Result<f64, AppError> {
        params.get(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| AppError::BadInput(format!("{name}={v} is not a number")))
        })
    };
    Ok(ReportQuery {
        model,
        stage,
        period: period_param(params)?,
        grouping,
        half_life_days: number("halfLifeDays", 7.0)?,
        lookback_days: params.get("lookbackDays").map_or(Ok(365), |v| {
            v.parse::<i64>().map_err(|_| {
                AppError::BadInput(format!("lookbackDays={v} is not a whole number of days"))
            })
        })?,
        mapping,
        segment: params.get("segment").cloned(),
    })
}

/// `GET /export/comparison.csv?models=LINEAR,W_SHAPED&from=&to=&stage=&contacts=`
/// (`markovOrders=1,2` puts MARKOV in at each order, `customModels=` adds custom ones): the
/// `attributionComparison` table, a row per campaign and a conversions and a revenue column per
/// model, then each model's other and unattributed figures.
pub(super) async fn export_comparison(
    req: HttpRequest,
    RequestId(rid): RequestId,
    Authenticated(ctx): Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    use crate::domain::attribution::Model;
    let params = query_params(&req);
    let list = |name: &str| -> Vec<String> {
        params
            .get(name)
            .map(|l| {
                l.split(',')
                    .map(|m| m.trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (named, custom) = (list("models"), list("customModels"));
    let result = async {
        ctx.require_read(crate::auth::Read::Campaigns, "attribution")?;
        if named.is_empty() && custom.is_empty() {
            return Err(AppError::BadInput(
                "query parameter models (e.g. LINEAR,W_SHAPED,MARKOV) or customModels (keys) is required"
                    .into(),
            ));
        }
        let orders = match params.get("markovOrders") {
            None => vec![1],
            Some(_) => list("markovOrders")
                .iter()
                .map(|k| {
                    k.parse::<i64>()
                        .map_err(|_| AppError::BadInput(format!("markovOrders: {k} is not a number")))
                })
                .collect::<Result<Vec<i64>, AppError>>()?,
        };
        if orders.is_empty() {
            return Err(AppError::BadInput(
                "markovOrders lists at least one order (1, 2 or 3)".into(),
            ));
        }
        if params.contains_key("markovOrders") && !named.iter().any(|m| m == "MARKOV") {
            return Err(AppError::BadInput(
                "markovOrders goes with MARKOV in models".into(),
            ));
        }
        let mut models = Vec::new();
        for m in &named {
            let model = m.parse::<Model>().map_err(AppError::BadInput)?;
            if model.markov_order().is_some() {
                for k in &orders {
                    models.push(model.at_order(*k).map_err(AppError::BadInput)?);
                }
            } else {
                models.push(model);
            }
        }
        for key in &custom {
            models.push(crate::service::models::current(&ctx, key).await?);
        }
        let query = report_query(&params, Model::Linear)?;
        let c = crate::service::attribution::comparison(&ctx, &models, query).await?;
        // Each column's label: the model, MARKOV:order2 above order 1, or CUSTOM:key@version.
        let mut labels = Vec::new();
        for r in &c.reports {
            labels.push(model_label(&ctx, r.query.model).await?);
        }
        Ok((c, labels))
    }
    .await;
    let (c, labels) = result.map_err(|e| HttpError::app(&rid, e))?;
    let currency = &state.currency;
    let money = |cents: i64| crate::domain::money::Money(cents).to_decimal_string(currency);
    let mut header = vec!["key".to_string(), "campaign".to_string()];
    for m in &labels {
        header.push(format!("{m} conversions"));
        header.push(format!("{m} revenue"));
    }
    header.push("currency".into());
    let mut body = csv_line(&header);
    for row in &c.rows {
        let mut line = vec![
            row.key.clone(),
            row.campaign
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_default(),
        ];
        for (conversions, revenue) in &row.figures {
            line.push(conversions.to_decimal_string());
            line.push(money(*revenue));
        }
        line.push(currency.clone());
        body.push_str(&csv_line(&line));
    }
    let mut other = vec!["(other campaigns)".to_string(), String::new()];
    let mut unattributed = vec!["(unattributed)".to_string(), String::new()];
    for r in &c.reports {
        other.push(r.report.other_conversions.to_decimal_string());
        other.push(money(r.report.other_revenue));
        unattributed.push(r.report.unattributed_conversions.to_string());
        unattributed.push(money(r.report.unattributed_revenue));
    }
    other.push(currency.clone());
    unattributed.push(currency.clone());
    body.push_str(&csv_line(&other));
    body.push_str(&csv_line(&unattributed));
    Ok(csv_response("comparison.csv", body, &rid))
}
