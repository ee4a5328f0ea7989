//! The stack's own GraphQL floor, for `scripts/http-bench.sh`: actix-web 4 and async-graphql
//! 7.2 answering a one-field query, with no token, no precheck, no database and no metrics.
//! What funnelgraph adds to a request is measured against this, not only against a plain
//! route. Listens on `FLOOR_BIND` (default 127.0.0.1:18181); POST /graphql.

use actix_web::{web, App, HttpResponse, HttpServer};
use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> i32 {
        1
    }
}

type FloorSchema = Schema<Query, EmptyMutation, EmptySubscription>;

async fn graphql(schema: web::Data<FloorSchema>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = serde_json::from_slice::<async_graphql::Request>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    let response = schema.execute(request).await;
    match serde_json::to_string(&response) {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/json")
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

fn main() -> std::io::Result<()> {
    let bind = std::env::var("FLOOR_BIND").unwrap_or_else(|_| "127.0.0.1:18181".into());
    let schema = Schema::build(Query, EmptyMutation, EmptySubscription).finish();
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(schema.clone()))
                .route("/graphql", web::post().to(graphql))
        })
        .bind(bind)?
        .run()
        .await
    })
}
