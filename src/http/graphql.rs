//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql` (GraphiQL for a browser, or a
//! query from the query string), the precheck before async-graphql sees a document, and the
//! one place GraphQL responses get their error codes and request ids.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use async_graphql::parser::types::OperationType;
use serde_json::{json, Value};
use tracing::Instrument;

use super::{authenticate, context_for, error_body, AppState, OperationLabel, RequestId};
use crate::graphql::trusted::TrustedRequest;
use crate::graphql::Session;

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
    /// The document's text, or `document_id` naming a trusted one (SPEC §11).
    query: Option<String>,
    document_id: Option<String>,
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
        Some(Value::String(q)) => Some(q),
        None | Some(Value::Null) => None,
        Some(_) => return Err("\"query\" must be a string".into()),
    };
    let document_id = match map.remove("documentId") {
        Some(Value::String(id)) => Some(id),
        None | Some(Value::Null) => None,
        Some(_) => return Err("\"documentId\" must be a string (sha256:<hex>)".into()),
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
    // An Apollo client names a document by `extensions.persistedQuery.sha256Hash`: without a
    // text, that is a document id too (with one, the text runs).
    let persisted = match map.remove("extensions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(ext)) => ext
            .get("persistedQuery")
            .and_then(|p| p.get("sha256Hash"))
            .and_then(Value::as_str)
            .map(|hash| format!("sha256:{hash}")),
        Some(_) => return Err("\"extensions\" must be an object or null".into()),
    };
    let document_id = match (&query, document_id) {
        (Some(_), Some(_)) => {
            return Err("send \"query\" or \"documentId\", not both".into());
        }
        (Some(_), None) => None,
        (None, Some(id)) => Some(id),
        (None, None) => match persisted {
            Some(id) => Some(id),
            None => return Err("the request has no \"query\" (or \"documentId\")".into()),
        },
    };
    Ok(GqlParams {
        query,
        document_id,
        operation_name,
        variables,
    })
}

/// `POST /graphql`. The body is read only up to the configured limit: a declared length over
/// it is refused before a byte is read, and a streamed body stops being read at the limit.
pub(super) async fn graphql_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let rid = RequestId::of(&req);
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
pub(super) async fn graphql_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let rid = RequestId::of(&req);
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
    let text = query.remove("query");
    let document_id = query.remove("documentId");
    if text.is_none() && document_id.is_none() {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        if accept.contains("text/html") || accept.contains("*/*") {
            return HttpResponse::Ok()
                .insert_header(ContentType::html())
                .insert_header((header::CONTENT_SECURITY_POLICY, super::assets::PAGE_POLICY))
                .body(GRAPHIQL_HTML);
        }
        return refuse(
            StatusCode::BAD_REQUEST,
            "the query parameter is required",
            "BAD_USER_INPUT",
            media,
            &rid,
        );
    }
    let mut object = serde_json::Map::new();
    if let Some(text) = text {
        object.insert("query".into(), Value::String(text));
    }
    if let Some(id) = document_id {
        object.insert("documentId".into(), Value::String(id));
    }
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

/// Why a request is refused before GraphQL runs.
enum Refused {
    /// A request error: 200 as `application/json`, 400 as the GraphQL response type.
    Request(String, &'static str),
    /// Always HTTP 400 (an unknown or required trusted document).
    BadRequest(String, &'static str),
}

impl Refused {
    fn answer(self, media: Media, rid: &str) -> HttpResponse {
        match self {
            Refused::Request(message, code) => request_error(&message, code, media, rid),
            Refused::BadRequest(message, code) => {
                refuse(StatusCode::BAD_REQUEST, &message, code, media, rid)
            }
        }
    }
}

/// The async-graphql request for `params`, the type of the operation it selects (None when no
/// operation matches: the executor says so) and its label for metrics. A trusted document
/// comes parsed, and a trusted query is marked to skip validation (a mutation is validated
/// with its variables); any other text is prechecked (nesting, then
/// the fragment-expanded field count) and handed over parsed, unless only trusted documents
/// may run.
fn prepare(
    params: GqlParams,
    state: &AppState,
) -> Result<(async_graphql::Request, Option<OperationType>, String), Refused> {
    let GqlParams {
        query,
        document_id,
        operation_name,
        mut variables,
    } = params;
    let mut request;
    let operation;
    let label;
    if let Some(id) = document_id {
        let Some(doc) = state.trusted.get(&id) else {
            let shown: String = id.chars().take(80).collect();
            return Err(Refused::BadRequest(
                format!("no trusted document has the id {shown}; the server knows the built-in dashboard's documents and those of its manifest (FUNNELGRAPH_TRUSTED_DOCUMENTS), named sha256:<hex of the document's SHA-256>"),
                "PERSISTED_QUERY_NOT_FOUND",
            ));
        };
        let selected = doc.operation(operation_name.as_deref());
        operation = selected.map(|o| o.kind);
        label = selected
            .map(|o| o.label.clone())
            .or_else(|| operation_name.clone())
            .unwrap_or_else(|| "anonymous".into());
        request = async_graphql::Request::new(doc.text.clone());
        if operation == Some(OperationType::Query) {
            request = request.data(TrustedRequest);
        } else if let Some(op) = selected {
            // A mutation is validated with its variables; the document's other operations are
            // sized too, so theirs are given as they were at start-up.
            if !op.others.is_empty() {
                let mut all = match variables.take() {
                    Some(Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                for (k, v) in &op.others {
                    all.entry(k.clone()).or_insert_with(|| v.clone());
                }
                variables = Some(Value::Object(all));
            }
        }
        request.set_parsed_query(doc.document.clone());
    } else {
        let text = query.unwrap_or_default();
        if state.trusted.only {
            return Err(Refused::BadRequest(
                "this server runs trusted documents only: send {\"documentId\": \"sha256:<hex>\"} naming a document of its manifest".into(),
                "PERSISTED_QUERY_NOT_FOUND",
            ));
        }
        let checked =
            match state
                .documents
                .check(&text, operation_name.as_deref(), state.document_limits)
            {
                Ok(checked) => Some(checked),
                // A syntax error is left to async-graphql, whose message carries the location.
                Err(refusal) if refusal.syntax => None,
                Err(refusal) => return Err(Refused::Request(refusal.message, refusal.code)),
            };
        operation = checked.as_ref().and_then(|c| c.operation);
        label = operation_name
            .clone()
            .or_else(|| checked.as_ref().and_then(|c| c.root_field.clone()))
            .unwrap_or_else(|| "anonymous".into());
        request = async_graphql::Request::new(text);
        if let Some(checked) = checked {
            request.set_parsed_query(checked.document.clone());
        }
    }
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(vars) = variables {
        request = request.variables(async_graphql::Variables::from_json(vars));
    }
    Ok((request, operation, label))
}

async fn execute(
    req: &HttpRequest,
    params: GqlParams,
    state: &AppState,
    rid: String,
    via_get: bool,
    media: Media,
) -> HttpResponse {
    let caller = match authenticate(req, state) {
        Ok(caller) => caller,
        Err(e) => {
            tracing::info!(request_id = %rid, reason = %e, "unauthenticated request");
            return refuse(StatusCode::UNAUTHORIZED, &e, "UNAUTHENTICATED", media, &rid);
        }
    };
    let (request, operation, label) = match prepare(params, state) {
        Ok(prepared) => prepared,
        Err(refused) => return refused.answer(media, &rid),
    };
    {
        use actix_web::HttpMessage;
        req.extensions_mut().insert(OperationLabel(label));
    }
    if via_get && operation == Some(OperationType::Mutation) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "POST"))
            .insert_header((header::CONTENT_TYPE, media.content_type()))
            .body(error_body("mutations must be sent with POST", "BAD_USER_INPUT").to_string());
    }
    let span = tracing::info_span!("graphql", request_id = %rid, sub = %caller.sub, role = caller.role.as_str());
    async move {
        let db = state.db.for_request();
        // A mutation reads from the primary throughout: what it answers must include what it
        // wrote, and what it checks must not lag.
        if operation == Some(OperationType::Mutation) {
            db.pin_to_primary();
        }
        let ctx = match context_for(state, db, caller).await
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

/// GraphiQL, every file of it served by this binary (`assets`): works with no internet.
const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>funnelgraph · GraphiQL</title>
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
  <link rel="stylesheet" href="/assets/graphiql/graphiql.min.css">
</head>
<body>
  <div id="graphiql">Loading GraphiQL… (paste a token from `funnelgraph token` into the Headers tab as {"Authorization": "Bearer …"})</div>
  <script src="/assets/graphiql/react.production.min.js"></script>
  <script src="/assets/graphiql/react-dom.production.min.js"></script>
  <script src="/assets/graphiql/graphiql.min.js"></script>
  <script src="/assets/graphiql/start.js"></script>
</body>
</html>
"#;
