//! The HTTP layer: the app's wiring and middleware (one request id and one log line per
//! request, metrics), health and readiness, one way to authenticate a caller (`authenticate`,
//! and the `Authenticated` extractor built on it), and one mapping of a use-case error to a
//! status and body (`HttpError`). The routes live beside it: `graphql` (GraphQL over HTTP and
//! GraphiQL), `import` (NDJSON bulk import), `export` (CSV) and `assets` (the files browser pages
//! load, embedded).

pub(crate) mod assets;
pub(crate) mod export;
mod graphql;
mod import;

use std::net::TcpListener;

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, App, FromRequest, HttpMessage, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::auth::{bearer_token, Caller, Verifier};
use crate::db::Db;
use crate::graphql::{precheck, AppSchema};
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
    pub reports: std::sync::Arc<crate::service::cache::ReportCache>,
    /// Callers' user rows, reused for a moment.
    pub users: std::sync::Arc<crate::service::users::UserCache>,
    /// Under `serve --dev`: (role, token) of each demo role, for the dashboard's sign-in.
    pub dev_tokens: Vec<(String, String)>,
    /// Credit fact tables being written at once (two permits).
    pub exports: std::sync::Arc<tokio::sync::Semaphore>,
    /// The trusted documents' manifest, checked at start-up (SPEC §11).
    pub trusted: std::sync::Arc<crate::graphql::trusted::TrustedDocuments>,
}

/// Binds the routes to `listener` and returns the running server (await it, or hand it to
/// a runtime). Port 0 in tests gives each test its own server.
pub fn start(listener: TcpListener, state: AppState) -> std::io::Result<actix_web::dev::Server> {
    // The journey index loads in the background (`/ready` answers 503 until it has) and is
    // kept current for as long as the server's state lives.
    crate::service::index::maintain(
        state.db.clone(),
        std::sync::Arc::downgrade(&state.reports.index),
    );
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        let metrics = data.metrics.clone();
        App::new()
            .app_data(data.clone())
            // Every response is counted and logged once, named by its GraphQL operation (the
            // handler labels it) or its route.
            .wrap_fn(move |req, srv| {
                use actix_web::dev::Service;
                let started = std::time::Instant::now();
                // The request's id, for every handler, log line and response.
                let rid = RequestId(request_id());
                req.extensions_mut().insert(rid.clone());
                let route = req.path().to_string();
                let metrics = metrics.clone();
                let response = srv.call(req);
                async move {
                    let mut response = response.await?;
                    let status = response.status().as_u16();
                    if !response.headers().contains_key("x-request-id") {
                        if let Ok(value) = header::HeaderValue::from_str(&rid.0) {
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
            .route("/graphql", web::post().to(graphql::graphql_post))
            .route("/graphql", web::get().to(graphql::graphql_get))
            .route("/assets/{path:.*}", web::get().to(assets::asset))
            .route("/dev/tokens", web::get().to(dev_tokens))
            .route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics_text))
            .route("/ready", web::get().to(ready))
            .route("/import", web::post().to(import::import))
            .route(
                "/export/statements.csv",
                web::get().to(export::export_statements),
            )
            .route(
                "/export/attribution.csv",
                web::get().to(export::export_attribution),
            )
            .route(
                "/export/credits.parquet",
                web::get().to(export::export_credits),
            )
            .route("/export/credits.csv", web::get().to(export::export_credits))
            .route(
                "/export/comparison.csv",
                web::get().to(export::export_comparison),
            )
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

/// `GET /`: the managers' dashboard (SPEC §10), which reads the API with the caller's token.
async fn root() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType::html())
        .insert_header((header::CONTENT_SECURITY_POLICY, assets::PAGE_POLICY))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(assets::DASHBOARD_HTML)
}

/// `GET /dev/tokens`: under `serve --dev` with the database's development secret (no key
/// configured), the demo roles' tokens it printed, so the dashboard can sign in with one
/// click; 404 otherwise.
async fn dev_tokens(state: web::Data<AppState>) -> HttpResponse {
    if state.dev_tokens.is_empty() {
        return HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("only under serve --dev\n");
    }
    let list: Vec<Value> = state
        .dev_tokens
        .iter()
        .map(|(role, token)| json!({ "role": role, "token": token }))
        .collect();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(list)
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
        Ok(()) if !state.reports.index.has_loaded() => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "loading the journey index" })),
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "database not reachable");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unreachable" }))
        }
    }
}

/// The id of the request being served (set by the middleware for every request).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn of(req: &HttpRequest) -> String {
        req.extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(request_id)
    }
}

impl FromRequest for RequestId {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<RequestId, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(RequestId(RequestId::of(req))))
    }
}

/// The one way a caller is authenticated: the bearer token of the `Authorization` header,
/// verified (and remembered) by the server's verifier. The error is what the client is told.
pub fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Caller, String> {
    let auth_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    bearer_token(auth_header)
        .and_then(|t| state.verifier.verify_cached(t))
        .map_err(|e| e.to_string())
}

/// The use-case context of an authenticated caller on `db` (the request's handle), their user
/// row read once or remembered.
pub async fn context_for(state: &AppState, db: Db, caller: Caller) -> Result<Ctx, AppError> {
    Ctx::for_caller_cached(
        db,
        caller,
        state.currency.clone(),
        state.reports.clone(),
        Some(state.users.clone()),
    )
    .await
}

/// An authenticated caller's context, for every route outside GraphQL that needs one; a
/// request without a valid token is answered 401 `UNAUTHENTICATED` before the handler runs.
pub struct Authenticated(pub Ctx);

impl FromRequest for Authenticated {
    type Error = HttpError;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Authenticated, HttpError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let rid = RequestId::of(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let caller = state
            .as_ref()
            .map(|s| authenticate(req, s))
            .unwrap_or_else(|| Err("the server has no state".into()));
        Box::pin(async move {
            let caller = caller.map_err(|message| HttpError {
                rid: rid.clone(),
                kind: ErrorKind::Unauthenticated(message),
            })?;
            let state =
                state.ok_or_else(|| HttpError::app(&rid, AppError::Internal("no state".into())))?;
            context_for(&state, state.db.for_request(), caller)
                .await
                .map(Authenticated)
                .map_err(|e| HttpError::app(&rid, e))
        })
    }
}

/// An error answered outside GraphQL (exports, import, authentication): the one mapping of a
/// use-case error to an HTTP status and a body with `extensions.code` (and, for INTERNAL, the
/// request id; the cause goes to the log only).
#[derive(Debug)]
pub struct HttpError {
    rid: String,
    kind: ErrorKind,
}

#[derive(Debug)]
enum ErrorKind {
    Unauthenticated(String),
    App(AppError),
}

impl HttpError {
    pub fn app(rid: &str, error: AppError) -> HttpError {
        HttpError {
            rid: rid.to_string(),
            kind: ErrorKind::App(error),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ErrorKind::Unauthenticated(m) => write!(f, "{m}"),
            ErrorKind::App(e) => write!(f, "{}", e.message()),
        }
    }
}

impl actix_web::ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            ErrorKind::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ErrorKind::App(e) => match e {
                AppError::BadInput(_) | AppError::TooComplex(_) => StatusCode::BAD_REQUEST,
                AppError::Forbidden(_) => StatusCode::FORBIDDEN,
                AppError::NotFound(_) => StatusCode::NOT_FOUND,
                AppError::Conflict(_) | AppError::PeriodClosed(_) => StatusCode::CONFLICT,
                AppError::Db(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match &self.kind {
            ErrorKind::Unauthenticated(m) => error_body(m, "UNAUTHENTICATED"),
            ErrorKind::App(e) => {
                if let Some(detail) = e.internal_detail() {
                    tracing::error!(request_id = %self.rid, error = %detail, "internal error");
                }
                let mut body = error_body(&e.message(), e.code());
                if matches!(e, AppError::Db(_) | AppError::Internal(_)) {
                    body["errors"][0]["extensions"]["requestId"] = json!(self.rid);
                }
                body
            }
        };
        json_response(self.status_code(), &body, &self.rid)
    }
}
