//! The files a browser page loads, embedded in the binary so that nothing is fetched from
//! another host (SPEC §10): GraphiQL 3, React 18 and ReactDOM 18 as published on npm, vendored
//! into `assets/graphiql` by `scripts/vendor-graphiql.sh` (pinned versions, SHA256SUMS, and the
//! packages' licences, which are served too), the small script that starts GraphiQL, and the
//! managers' dashboard (plain HTML, CSS and JavaScript; no build step).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("graphiql/graphiql.min.js", "text/javascript; charset=utf-8"),
    asset!("graphiql/graphiql.min.css", "text/css; charset=utf-8"),
    asset!(
        "graphiql/react.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "graphiql/react-dom.production.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("graphiql/start.js", "text/javascript; charset=utf-8"),
    asset!("graphiql/LICENSE.graphiql", "text/plain; charset=utf-8"),
    asset!("graphiql/LICENSE.react", "text/plain; charset=utf-8"),
    asset!("graphiql/LICENSE.react-dom", "text/plain; charset=utf-8"),
    asset!("graphiql/VERSIONS", "text/plain; charset=utf-8"),
    asset!("graphiql/SHA256SUMS", "text/plain; charset=utf-8"),
    asset!("dashboard/app.js", "text/javascript; charset=utf-8"),
    asset!("dashboard/style.css", "text/css; charset=utf-8"),
    asset!("dashboard/documents.json", "application/json"),
    asset!("dashboard/documents.graphql", "text/plain; charset=utf-8"),
];

/// The dashboard's queries as a trusted-documents manifest (`documents.graphql`, extracted):
/// trusted by every server, so the dashboard runs where only trusted documents may.
pub(crate) const DASHBOARD_DOCUMENTS: &str = include_str!("../../assets/dashboard/documents.json");

/// The managers' dashboard (`GET /`): a page that signs in with a token and reads everything
/// through `/graphql` with it (`assets/dashboard`).
pub(super) const DASHBOARD_HTML: &[u8] = include_bytes!("../../assets/dashboard/index.html");

/// The policy of the pages these files make up: everything from this origin (styles and
/// fonts inline too, as GraphiQL's stylesheet embeds its fonts), so a browser refuses any
/// request to another host even if a script tried one.
pub(super) const PAGE_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `GET /assets/{path}`: an embedded file. GraphiQL's are cached by the browser for an hour;
/// the dashboard's are asked again each time (a few KB), so a page never pairs a new script
/// with an old manifest after an upgrade.
pub(super) async fn asset(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.path == path.as_str()) {
        Some(a) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, a.content_type))
            .insert_header((
                header::CACHE_CONTROL,
                if a.path.starts_with("dashboard/") {
                    "no-cache"
                } else {
                    "public, max-age=3600"
                },
            ))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(a.body),
        None => HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("no such file\n"),
    }
}
