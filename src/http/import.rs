//! `POST /import`: NDJSON or CSV records streamed into batched transactions.

use actix_web::http::header::{self, ContentType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use tracing::Instrument;

use super::{error_body, json_response, AppState, Authenticated, HttpError, RequestId};
use crate::service::AppError;

/// `POST /import`: NDJSON, one mutation input plus its `type` per line, streamed and written
/// in batched transactions. Answers with counts and the refused lines (line, code, message).
pub(super) async fn import(
    req: HttpRequest,
    RequestId(rid): RequestId,
    Authenticated(ctx): Authenticated,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HttpError> {
    use futures_util::StreamExt;
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
    let csv = content_type.starts_with("text/csv");
    if !ndjson && !csv {
        return Ok(json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &error_body(
                "send the records as Content-Type: application/x-ndjson (one JSON object per line), \
                 or as text/csv with ?type= (one record type per file, a header row of its fields)",
                "BAD_USER_INPUT",
            ),
            &rid,
        ));
    }
    if !crate::auth::policy::may_import(ctx.caller.role) {
        return Err(HttpError::app(
            &rid,
            AppError::Forbidden(format!(
                "role {} may not import records",
                ctx.caller.role.as_str()
            )),
        ));
    }
    // CSV: the record type, and optionally a mapping of the file's headers to field names
    // (a JSON object), from the query string.
    let csv_of = if csv {
        let query =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .map(|q| q.into_inner())
                .unwrap_or_default();
        let Some(kind) = query.get("type").cloned() else {
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                &error_body(
                    "a CSV import names its record type: POST /import?type=lead (one type per file)",
                    "BAD_USER_INPUT",
                ),
                &rid,
            ));
        };
        let mapping = match query.get("mapping") {
            None => Default::default(),
            Some(text) => match serde_json::from_str(text) {
                Ok(m) => m,
                Err(_) => {
                    return Ok(json_response(
                        StatusCode::BAD_REQUEST,
                        &error_body(
                            "mapping is a JSON object of header names to field names",
                            "BAD_USER_INPUT",
                        ),
                        &rid,
                    ))
                }
            },
        };
        Some((kind, mapping))
    } else {
        None
    };
    let span = tracing::info_span!("import", request_id = %rid, sub = %ctx.caller.sub);
    async move {
        let started = std::time::Instant::now();
        let mut importer = match csv_of {
            None => crate::graphql::import::Importer::new(ctx, state.max_body_bytes),
            Some((kind, mapping)) => {
                crate::graphql::import::Importer::csv(ctx, state.max_body_bytes, &kind, mapping)
                    .map_err(|e| HttpError::app(&rid, e))?
            }
        };
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| {
                HttpError::app(
                    &rid,
                    AppError::BadInput(format!(
                        "the upload broke off after line {}; lines before it were written",
                        importer.summary.lines
                    )),
                )
            })?;
            importer
                .feed(&chunk)
                .await
                .map_err(|e| HttpError::app(&rid, e))?;
        }
        let summary = importer
            .finish()
            .await
            .map_err(|e| HttpError::app(&rid, e))?;
        tracing::info!(
            lines = summary.lines,
            applied = summary.applied,
            failed = summary.failed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import done"
        );
        Ok(HttpResponse::Ok()
            .insert_header(ContentType::json())
            .insert_header(("x-request-id", rid.clone()))
            .json(&summary))
    }
    .instrument(span)
    .await
}
