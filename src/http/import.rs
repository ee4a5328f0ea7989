//! `POST /import`: NDJSON records streamed into batched transactions.

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
    if !ndjson {
        return Ok(json_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &error_body(
                "send the records as Content-Type: application/x-ndjson (one JSON object per line)",
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
    let span = tracing::info_span!("import", request_id = %rid, sub = %ctx.caller.sub);
    async move {
        let started = std::time::Instant::now();
        let mut importer = crate::graphql::import::Importer::new(ctx, state.max_body_bytes);
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
