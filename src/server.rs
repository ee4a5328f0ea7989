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
use crate::graphql::{precheck, AppSchema, Session};
use crate::service::{AppError, Ctx};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub schema: AppSchema,
    pub verifier: Verifier,
    pub currency: String,
    pub max_body_bytes: usize,
    /// Bounds a document is sized against before async-graphql parses and validates it.
    pub document_limits: precheck::DocumentLimits,
    /// Documents that passed the precheck, parsed, by text and operation name.
    pub documents: std::sync::Arc<precheck::DocumentCache>,
    /// How long a query may run before it is answered with QUERY_TOO_COMPLEX.
    pub request_timeout: std::time::Duration,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub reports: std::sync::Arc<crate::service::attribution::ReportCache>,
    /// Callers' user rows, reused for a moment.
    pub users: std::sync::Arc<crate::service::users::UserCache>,
}

/// Binds the routes to `listener` and returns the running server (await it, or hand it to
/// a runtime). Port 0 in tests gives each test its own server.
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        let metrics = data.metrics.clone();
        App::new()
            .app_data(data.clone())
            // Every response is counted and logged once, named by its GraphQL operation (the
            // handler labels it) or its route.
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                use actix_web::HttpMessage;
                let started = std::time::Instant::now();
                let route = req.path().to_string();
                let metrics = metrics.clone();
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let status = response.status().as_u16();
                    // Routes that do not name their request (health, metrics) get an id here,
                    // so every log line and response has one.
                    if !response.headers().contains_key("x-request-id") {
                        if let Ok(value) = header::HeaderValue::from_str(&request_id()) {
                            response
                                .headers_mut()
                                .insert(header::HeaderName::from_static("x-request-id"), value);
                        }
                    }
                    let label = response
                        .request()
                        .extensions()
                        .get::<OperationLabel>()
                        .map(|l| l.0.clone());
                    let rid = response
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string();
                    let operation = label.unwrap_or(route);
                    let elapsed = started.elapsed();
                    metrics.observe(&operation, status, elapsed);
                    tracing::info!(
                        request_id = %rid,
                        operation = %operation,
                        status,
                        elapsed_ms = elapsed.as_millis() as u64,
                        "request"
                    );
                    Ok(response)
                }
            })
            .route("/", web::get().to(root))
            .route("/graphql", web::post().to(graphql_post))
            .route("/graphql", web::get().to(graphql_get))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics_text))
            .route("/ready", web::get().to(ready))
            .route("/import", web::post().to(import))
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

/// The GraphQL operation a response answered, for metrics and the request log.
#[derive(Clone)]
struct OperationLabel(String);

/// `GET /metrics`: Prometheus text format. No token: scrape it from the operator's network.
async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    let (connections, idle) = state.db.pool_state();
    let (hits, misses) = state.reports.counts();
    let body = state.metrics.render(&crate::metrics::Gauges {
        pool_connections: connections,
        pool_idle: idle,
        pool_max: state.db.pool_max(),
        statements: state.db.statements_run(),
        slow_statements: state.db.slow_statements(),
        replica_reads: state.db.replica_reads(),
        cache_hits: hits,
        cache_misses: misses,
    });
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(body)
}

/// `GET /`: there is no page here (yet); the API and GraphiQL live at `/graphql`.
async fn root() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/graphql"))
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body("funnelgraph: the GraphQL API (and GraphiQL in a browser) is at /graphql\n")
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

/// The media type a GraphQL response is sent as (GraphQL over HTTP, "Accept").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `application/json`: request errors that GraphQL itself reports still answer 200.
    Json,
    /// `application/graphql-response+json`: a request error (no `data`) answers 4xx.
    GraphqlResponse,
}

impl Media {
    fn of(req: &HttpRequest) -> Media {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept
            .to_ascii_lowercase()
            .contains("application/graphql-response+json")
        {
            Media::GraphqlResponse
        } else {
            Media::Json
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Media::Json => "application/json; charset=utf-8",
            Media::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

fn graphql_response(status: StatusCode, body: &Value, media: Media, rid: &str) -> HttpResponse {
    graphql_text(status, body.to_string(), media, rid)
}

fn graphql_text(status: StatusCode, text: String, media: Media, rid: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, media.content_type()))
        .insert_header(("x-request-id", rid.to_string()))
        .body(text)
}

/// A request the HTTP layer refuses before GraphQL runs (always 4xx, whatever the media).
fn refuse(status: StatusCode, message: &str, code: &str, media: Media, rid: &str) -> HttpResponse {
    graphql_response(status, &error_body(message, code), media, rid)
}

/// The parameters of one GraphQL request, from a JSON body or a GET query string.
struct GqlParams {
    query: String,
    operation_name: Option<String>,
    variables: Option<Value>,
}

/// Reads the GraphQL-over-HTTP parameters out of a JSON object, with a clear message for each
/// wrong type.
fn params_from_json(value: Value) -> Result<GqlParams, String> {
    let mut map = match value {
        Value::Object(map) => map,
        Value::Array(_) => {
            return Err("batched requests are not supported; send one operation per request".into())
        }
        _ => return Err("the body must be a JSON object with a \"query\" string".into()),
    };
    let query = match map.remove("query") {
        Some(Value::String(q)) => q,
        None | Some(Value::Null) => return Err("the request has no \"query\"".into()),
        Some(_) => return Err("\"query\" must be a string".into()),
    };
    let operation_name = match map.remove("operationName") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err("\"operationName\" must be a string or null".into()),
    };
    let variables = match map.remove("variables") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err("\"variables\" must be an object or null".into()),
    };
    match map.remove("extensions") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err("\"extensions\" must be an object or null".into()),
    }
    Ok(GqlParams {
        query,
        operation_name,
        variables,
    })
}

/// `POST /graphql`. The body is read only up to the configured limit: a declared length over
/// it is refused before a byte is read, and a streamed body stops being read at the limit.
async fn graphql_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let rid = request_id();
    let media = Media::of(&req);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as Content-Type: application/json",
            "BAD_USER_INPUT",
            media,
            &rid,
        );
    }
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request body is larger than {} bytes",
                state.max_body_bytes
            ),
            "BAD_USER_INPUT",
            media,
            &rid,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        return too_large();
    }
    let body = match payload.to_bytes_limited(state.max_body_bytes).await {
        Err(_) => return too_large(),
        Ok(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
                "BAD_USER_INPUT",
                media,
                &rid,
            )
        }
        Ok(Ok(body)) => body,
    };
    let params = match serde_json::from_slice::<Value>(&body) {
        Ok(value) => params_from_json(value),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    };
    match params {
        Ok(params) => execute(&req, params, &state, rid, false, media).await,
        Err(message) => refuse(
            StatusCode::BAD_REQUEST,
            &message,
            "BAD_USER_INPUT",
            media,
            &rid,
        ),
    }
}

/// `GET /graphql`: GraphiQL for a browser, or a query (never a mutation) from the query string.
async fn graphql_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let rid = request_id();
    let media = Media::of(&req);
    let mut query = match web::Query::<std::collections::HashMap<String, String>>::from_query(
        req.query_string(),
    ) {
        Ok(q) => q.into_inner(),
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the query string is not valid",
                "BAD_USER_INPUT",
                media,
                &rid,
            )
        }
    };
    let Some(text) = query.remove("query") else {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        if accept.contains("text/html") || accept.contains("*/*") {
            return HttpResponse::Ok()
                .insert_header(ContentType::html())
                .body(GRAPHIQL_HTML);
        }
        return refuse(
            StatusCode::BAD_REQUEST,
            "the query parameter is required",
            "BAD_USER_INPUT",
            media,
            &rid,
        );
    };
    let mut object = serde_json::Map::new();
    object.insert("query".into(), Value::String(text));
    if let Some(name) = query.remove("operationName") {
        object.insert("operationName".into(), Value::String(name));
    }
    for key in ["variables", "extensions"] {
        if let Some(raw) = query.remove(key) {
            match serde_json::from_str::<Value>(&raw) {
                Ok(v) => {
                    object.insert(key.into(), v);
                }
                Err(_) => {
                    return refuse(
                        StatusCode::BAD_REQUEST,
                        &format!("{key} is not valid JSON"),
                        "BAD_USER_INPUT",
                        media,
                        &rid,
                    )
                }
            }
        }
    }
    match params_from_json(Value::Object(object)) {
        Ok(params) => execute(&req, params, &state, rid, true, media).await,
        Err(message) => refuse(
            StatusCode::BAD_REQUEST,
            &message,
            "BAD_USER_INPUT",
            media,
            &rid,
        ),
    }
}

/// A GraphQL request error (no `data`): 200 as `application/json`, 400 as
/// `application/graphql-response+json`, as GraphQL over HTTP asks.
fn request_error(message: &str, code: &str, media: Media, rid: &str) -> HttpResponse {
    let status = match media {
        Media::Json => StatusCode::OK,
        Media::GraphqlResponse => StatusCode::BAD_REQUEST,
    };
    graphql_response(status, &error_body(message, code), media, rid)
}

async fn execute(
    req: &HttpRequest,
    params: GqlParams,
    state: &AppState,
    rid: String,
    via_get: bool,
    media: Media,
) -> HttpResponse {
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match bearer_token(auth_header).and_then(|t| state.verifier.verify_cached(t)) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(request_id = %rid, reason = %e, "unauthenticated request");
            return refuse(
                StatusCode::UNAUTHORIZED,
                &e.to_string(),
                "UNAUTHENTICATED",
                media,
                &rid,
            );
        }
    };
    // Sized before async-graphql sees it: nesting, then the fragment-expanded field count.
    let checked = match state.documents.check(
        &params.query,
        params.operation_name.as_deref(),
        state.document_limits,
    ) {
        Ok(checked) => Some(checked),
        // A syntax error is left to async-graphql, whose message carries the location.
        Err(refusal) if refusal.syntax => None,
        Err(refusal) => return request_error(&refusal.message, refusal.code, media, &rid),
    };
    let operation = checked.as_ref().and_then(|c| c.operation);
    {
        use actix_web::HttpMessage;
        let label = params
            .operation_name
            .clone()
            .or_else(|| checked.as_ref().and_then(|c| c.root_field.clone()))
            .unwrap_or_else(|| "anonymous".into());
        req.extensions_mut().insert(OperationLabel(label));
    }
    if via_get && operation == Some(OperationType::Mutation) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .insert_header((header::CONTENT_TYPE, media.content_type()))
            .body(error_body("mutations must be sent with POST", "BAD_USER_INPUT").to_string());
    }
    let mut request = async_graphql::Request::new(params.query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = params.variables {
        request = request.variables(async_graphql::Variables::from_json(vars));
    }
    if let Some(checked) = checked {
        request.set_parsed_query(checked.document.clone());
    }
    let span = tracing::info_span!("graphql", request_id = %rid, sub = %caller.sub, role = caller.role.as_str());
    async move {
        let db = state.db.for_request();
        // A mutation reads from the primary throughout: what it answers must include what it
        // wrote, and what it checks must not lag.
        if operation == Some(OperationType::Mutation) {
            db.pin_to_primary();
        }
        let ctx = match Ctx::for_caller_cached(
            db,
            caller,
            state.currency.clone(),
            state.reports.clone(),
            Some(state.users.clone()),
        )
        .await
        {
            Ok(ctx) => ctx,
            Err(e) => {
                let detail = e.internal_detail().unwrap_or_else(|| e.message());
                tracing::error!(error = %detail, "could not start the request");
                let mut body = error_body("internal error", "INTERNAL");
                body["errors"][0]["extensions"]["requestId"] = json!(rid);
                return graphql_response(StatusCode::INTERNAL_SERVER_ERROR, &body, media, &rid);
            }
        };
        let run = state.schema.execute(request.data(Session::new(ctx)));
        // Queries are bounded in time; a mutation is never cut off half-way through (it
        // runs in one transaction and is answered with what it did).
        let response = if operation == Some(OperationType::Mutation) {
            run.await
        } else {
            match tokio::time::timeout(state.request_timeout, run).await {
                Ok(response) => response,
                Err(_) => {
                    tracing::warn!(timeout = ?state.request_timeout, "query over the time bound");
                    return request_error(
                        &format!(
                            "the query ran longer than {} ms; ask for a shorter period or a smaller page",
                            state.request_timeout.as_millis()
                        ),
                        "QUERY_TOO_COMPLEX",
                        media,
                        &rid,
                    );
                }
            }
        };
        // Without errors there is nothing to label or put back: written out as it is.
        if response.errors.is_empty() {
            if let Ok(text) = serde_json::to_string(&response) {
                return graphql_text(StatusCode::OK, text, media, &rid);
            }
        }
        let mut body = serde_json::to_value(&response)
            .unwrap_or_else(|_| error_body("internal error", "INTERNAL"));
        label_errors(&mut body, &rid);
        null_at_error_paths(&mut body);
        // A request error (parse, validation, variables) has no path and no data.
        let request_failed = body.get("data").is_none_or(Value::is_null)
            && body
                .get("errors")
                .and_then(Value::as_array)
                .is_some_and(|errors| !errors.is_empty() && errors.iter().all(|e| e.get("path").is_none()));
        if request_failed {
            if let Some(object) = body.as_object_mut() {
                object.remove("data");
            }
            let status = match media {
                Media::Json => StatusCode::OK,
                Media::GraphqlResponse => StatusCode::BAD_REQUEST,
            };
            return graphql_response(status, &body, media, &rid);
        }
        graphql_response(StatusCode::OK, &body, media, &rid)
    }
    .instrument(span)
    .await
}

/// async-graphql 7.2 leaves a field that failed out of its object; SPEC §6 wants it present
/// as null, with the error pointing at it. Puts the null back where the path says.
fn null_at_error_paths(body: &mut Value) {
    let paths: Vec<Vec<Value>> = body
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("path").and_then(Value::as_array).cloned())
                .collect()
        })
        .unwrap_or_default();
    let Some(data) = body.get_mut("data") else {
        return;
    };
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let pointer: String = parents
            .iter()
            .map(|segment| match segment {
                Value::String(key) => format!("/{}", key.replace('~', "~0").replace('/', "~1")),
                other => format!("/{other}"),
            })
            .collect();
        let reached = data.pointer_mut(&pointer);
        if let (Value::String(key), Some(object)) = (last, reached.and_then(Value::as_object_mut)) {
            object.entry(key.clone()).or_insert(Value::Null);
        }
    }
}

/// Gives every error a code (ours, and the bounds', already have one) and every INTERNAL one
/// the request id.
fn label_errors(body: &mut Value, rid: &str) {
    let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) else {
        return;
    };
    for error in errors {
        let ext = error
            .as_object_mut()
            .map(|o| o.entry("extensions").or_insert_with(|| json!({})));
        let Some(ext) = ext.and_then(Value::as_object_mut) else {
            continue;
        };
        // Bounds and parse/validation errors carry their codes (graphql::bounds), use-case
        // errors theirs (graphql::error); what is left is async-graphql coercing an input
        // during execution (a scalar or enum it could not read): the client's input.
        if !ext.contains_key("code") {
            ext.insert("code".into(), json!("BAD_USER_INPUT"));
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
        .and_then(|t| state.verifier.verify_cached(t))
        .map_err(|e| {
            json_response(
                StatusCode::UNAUTHORIZED,
                &error_body(&e.to_string(), "UNAUTHENTICATED"),
                rid,
            )
        })?;
    Ctx::for_caller_cached(
        state.db.for_request(),
        caller,
        state.currency.clone(),
        state.reports.clone(),
        Some(state.users.clone()),
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

/// `POST /import`: NDJSON, one mutation input plus its `type` per line, streamed and written
/// in batched transactions. Answers with counts and the refused lines (line, code, message).
async fn import(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    use futures_util::StreamExt;
    let rid = request_id();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ndjson = [
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
    ]
    .iter()
    .any(|t| content_type.starts_with(t));
    if !ndjson {
        return json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &error_body(
                "send the records as Content-Type: application/x-ndjson (one JSON object per line)",
                "BAD_USER_INPUT",
            ),
            &rid,
        );
    }
    let ctx = match caller_ctx(&req, &state, &rid).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if !crate::auth::policy::may_import(ctx.caller.role) {
        return app_error_response(
            &AppError::Forbidden(format!(
                "role {} may not import records",
                ctx.caller.role.as_str()
            )),
            &rid,
        );
    }
    let span = tracing::info_span!("import", request_id = %rid, sub = %ctx.caller.sub);
    async move {
        let started = std::time::Instant::now();
        let mut importer = crate::graphql::import::Importer::new(ctx, state.max_body_bytes);
        while let Some(chunk) = payload.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(_) => {
                    return app_error_response(
                        &AppError::BadInput(format!(
                            "the upload broke off after line {}; lines before it were written",
                            importer.summary.lines
                        )),
                        &rid,
                    )
                }
            };
            if let Err(e) = importer.feed(&chunk).await {
                return app_error_response(&e, &rid);
            }
        }
        match importer.finish().await {
            Ok(summary) => {
                tracing::info!(
                    lines = summary.lines,
                    applied = summary.applied,
                    failed = summary.failed,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "import done"
                );
                HttpResponse::Ok()
                    .insert_header(ContentType::json())
                    .insert_header(("x-request-id", rid.clone()))
                    .json(&summary)
            }
            Err(e) => app_error_response(&e, &rid),
        }
    }
    .instrument(span)
    .await
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
