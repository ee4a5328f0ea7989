//! The HTTP server: routes, authentication before any resolver, body limits, and the one
//! place GraphQL responses get their error codes and request ids.

use std::net::TcpListener;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use async_graphql::parser::types::OperationType;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::auth::{bearer_token, Verifier};
use crate::db::Db;
use crate::graphql::{AppSchema, Session};
use crate::service::{AppError, Ctx};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub schema: AppSchema,
    pub verifier: Verifier,
    pub currency: String,
    pub max_body_bytes: usize,
    pub reports: std::sync::Arc<crate::service::attribution::ReportCache>,
}

/// Binds the routes to `listener` and returns the running server (await it, or hand it to
/// a runtime). Port 0 in tests gives each test its own server.
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let max_body = state.max_body_bytes;
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .route("/graphql", web::post().to(graphql_post))
            .route("/graphql", web::get().to(graphql_get))
            .route("/health", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/export/statements.csv", web::get().to(export_statements))
            .route("/export/attribution.csv", web::get().to(export_attribution))
    })
    .listen(listener)?
    .shutdown_timeout(10)
    .run();
    Ok(server)
}

fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn error_body(message: &str, code: &str) -> Value {
    json!({ "errors": [ { "message": message, "extensions": { "code": code } } ] })
}

fn json_response(status: StatusCode, body: &Value, request_id: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(ContentType::json())
        .insert_header(("x-request-id", request_id.to_string()))
        .body(body.to_string())
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let result = state
        .db
        .run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")
                .map_err(crate::db::DbError::from)
        })
        .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unreachable" }))
        }
    }
}

async fn graphql_post(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let rid = request_id();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &error_body(
                "send the request as Content-Type: application/json",
                "BAD_USER_INPUT",
            ),
            &rid,
        );
    }
    let request: async_graphql::Request = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(_)) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &error_body(
                    "batched requests are not supported; send one operation per request",
                    "BAD_USER_INPUT",
                ),
                &rid,
            )
        }
        Ok(value) => match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &error_body(&format!("not a GraphQL request: {e}"), "BAD_USER_INPUT"),
                    &rid,
                )
            }
        },
        Err(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &error_body("the body is not valid JSON", "BAD_USER_INPUT"),
                &rid,
            )
        }
    };
    execute(&req, request, &state, rid, false).await
}

async fn graphql_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .unwrap_or_default();
    let Some(text) = query.get("query") else {
        return HttpResponse::Ok()
            .insert_header(ContentType::html())
            .body(GRAPHIQL_HTML);
    };
    let rid = request_id();
    let mut request = async_graphql::Request::new(text.clone());
    if let Some(name) = query.get("operationName") {
        request = request.operation_name(name.clone());
    }
    if let Some(vars) = query.get("variables") {
        match serde_json::from_str::<Value>(vars) {
            Ok(v) => request = request.variables(async_graphql::Variables::from_json(v)),
            Err(_) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &error_body("variables is not valid JSON", "BAD_USER_INPUT"),
                    &rid,
                )
            }
        }
    }
    execute(&req, request, &state, rid, true).await
}

/// Whether the operation the request selects is a mutation.
fn is_mutation(request: &async_graphql::Request) -> bool {
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else {
        return false;
    };
    let op = match (&request.operation_name, &doc.operations) {
        (_, async_graphql::parser::types::DocumentOperations::Single(op)) => Some(&op.node),
        (Some(name), async_graphql::parser::types::DocumentOperations::Multiple(map)) => {
            map.get(name.as_str()).map(|op| &op.node)
        }
        (None, async_graphql::parser::types::DocumentOperations::Multiple(map)) => {
            map.values().next().map(|op| &op.node)
        }
    };
    op.is_some_and(|op| op.ty == OperationType::Mutation)
}

async fn execute(
    req: &HttpRequest,
    request: async_graphql::Request,
    state: &AppState,
    rid: String,
    via_get: bool,
) -> HttpResponse {
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match bearer_token(auth_header).and_then(|t| state.verifier.verify(t)) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(request_id = %rid, reason = %e, "unauthenticated request");
            return json_response(
                StatusCode::UNAUTHORIZED,
                &error_body(&e.to_string(), "UNAUTHENTICATED"),
                &rid,
            );
        }
    };
    if via_get && is_mutation(&request) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .insert_header(ContentType::json())
            .body(error_body("mutations must be sent with POST", "BAD_USER_INPUT").to_string());
    }
    let span = tracing::info_span!("graphql", request_id = %rid, sub = %caller.sub, role = caller.role.as_str());
    async move {
        let ctx = match Ctx::for_caller(
            state.db.clone(),
            caller,
            state.currency.clone(),
            state.reports.clone(),
        )
        .await
        {
            Ok(ctx) => ctx,
            Err(e) => {
                let detail = e.internal_detail().unwrap_or_else(|| e.message());
                tracing::error!(error = %detail, "could not start the request");
                let mut body = error_body("internal error", "INTERNAL");
                body["errors"][0]["extensions"]["requestId"] = json!(rid);
                return json_response(StatusCode::INTERNAL_SERVER_ERROR, &body, &rid);
            }
        };
        let response = state.schema.execute(request.data(Session::new(ctx))).await;
        let mut body = serde_json::to_value(&response)
            .unwrap_or_else(|_| error_body("internal error", "INTERNAL"));
        label_errors(&mut body, &rid);
        json_response(StatusCode::OK, &body, &rid)
    }
    .instrument(span)
    .await
}

/// Gives every error a code: ours already have one; the ones async-graphql raises while
/// parsing and validating are bad input, or a query over a limit.
fn label_errors(body: &mut Value, rid: &str) {
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return;
    };
    for error in errors {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ext = error
            .as_object_mut()
            .map(|o| o.entry("extensions").or_insert_with(|| json!({})));
        let Some(ext) = ext.and_then(Value::as_object_mut) else {
            continue;
        };
        if !ext.contains_key("code") {
            let code = if message.contains("too complex")
                || message.contains("nested too deep")
                || message.contains("too many directives")
                || message.contains("recursion")
            {
                "QUERY_TOO_COMPLEX"
            } else {
                "BAD_USER_INPUT"
            };
            ext.insert("code".into(), json!(code));
        }
        if ext.get("code").and_then(Value::as_str) == Some("INTERNAL") {
            ext.insert("requestId".into(), json!(rid));
        }
    }
}

/// Maps a use-case error raised outside GraphQL (CSV exports, import) to an HTTP status.
pub fn http_status(e: &AppError) -> StatusCode {
    match e.code() {
        "BAD_USER_INPUT" => StatusCode::BAD_REQUEST,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "CONFLICT" | "PERIOD_CLOSED" => StatusCode::CONFLICT,
        "QUERY_TOO_COMPLEX" => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Authenticates a non-GraphQL request and builds its context, or answers the error.
async fn caller_ctx(req: &HttpRequest, state: &AppState, rid: &str) -> Result<Ctx, HttpResponse> {
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = bearer_token(auth_header)
        .and_then(|t| state.verifier.verify(t))
        .map_err(|e| {
            json_response(
                StatusCode::UNAUTHORIZED,
                &error_body(&e.to_string(), "UNAUTHENTICATED"),
                rid,
            )
        })?;
    Ctx::for_caller(
        state.db.clone(),
        caller,
        state.currency.clone(),
        state.reports.clone(),
    )
    .await
    .map_err(|e| app_error_response(&e, rid))
}

fn app_error_response(e: &AppError, rid: &str) -> HttpResponse {
    if let Some(detail) = e.internal_detail() {
        tracing::error!(request_id = %rid, error = %detail, "internal error");
    }
    let mut body = error_body(&e.message(), e.code());
    if e.code() == "INTERNAL" {
        body["errors"][0]["extensions"]["requestId"] = json!(rid);
    }
    json_response(http_status(e), &body, rid)
}

/// One CSV field, quoted when it must be (RFC 4180).
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

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
async fn export_statements(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let rid = request_id();
    let ctx = match caller_ctx(&req, &state, &rid).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let result = async {
        let period = period_param(&query_params(&req))?;
        crate::service::compensation::statements(&ctx, period).await
    }
    .await;
    let statements = match result {
        Ok(s) => s,
        Err(e) => return app_error_response(&e, &rid),
    };
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
                s.status.clone(),
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
    csv_response("statements.csv", body, &rid)
}

/// `GET /export/attribution.csv?model=&from=&to=&stage=&groupBy=`: a report's rows for BI.
async fn export_attribution(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    use crate::domain::report::Grouping;
    use crate::service::attribution::{report, ReportQuery};
    let rid = request_id();
    let ctx = match caller_ctx(&req, &state, &rid).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let params = query_params(&req);
    let parsed = (|| -> Result<ReportQuery, AppError> {
        let model = params
            .get("model")
            .ok_or_else(|| {
                AppError::BadInput("query parameter model (e.g. W_SHAPED) is required".into())
            })?
            .parse()
            .map_err(AppError::BadInput)?;
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
            other => {
                return Err(AppError::BadInput(format!(
                    "groupBy={other}: use CAMPAIGN, CHANNEL or MONTH"
                )))
            }
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
            period: period_param(&params)?,
            grouping,
            half_life_days: number("halfLifeDays", 7.0)?,
            lookback_days: number("lookbackDays", 365.0)? as i64,
        })
    })();
    let result = match parsed {
        Ok(query) => report(&ctx, query).await,
        Err(e) => Err(e),
    };
    let r = match result {
        Ok(r) => r,
        Err(e) => return app_error_response(&e, &rid),
    };
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
            row.conversions.to_string(),
            money(row.revenue),
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
    csv_response("attribution.csv", body, &rid)
}

const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>funnelgraph · GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL… (paste a token from `funnelgraph token` into the Headers tab as {"Authorization": "Bearer …"})</div>
  <script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
  <script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({ url: window.location.pathname });
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultHeaders: '{"Authorization": "Bearer PASTE_A_TOKEN_HERE"}',
        defaultQuery: '{\n  me { externalId name role }\n  campaigns(first: 10) { totalCount nodes { externalId name channel cost { amount currency } } }\n}\n',
      })
    );
  </script>
</body>
</html>
"#;
