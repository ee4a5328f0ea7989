//! The HTTP surface: endpoints, content types, methods, and internal errors that say nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use funnelgraph::auth::Role;
use serde_json::json;

both_databases! {
    fn health_ready_and_graphiql_answer(app) {
        assert_eq!(app.get("/health"), (200, r#"{"status":"ok"}"#.to_string()));
        assert_eq!(app.get("/ready"), (200, r#"{"status":"ready"}"#.to_string()));
        let (status, page) = app.get("/graphql");
        assert_eq!(status, 200);
        assert!(page.contains("GraphiQL"));
    }

    fn a_body_that_is_not_a_json_graphql_request_is_refused(app) {
        let auth = format!("Bearer {}", app.token("x", Role::Admin));
        let (status, v) = app.post_raw(Some(&auth), "text/plain", "{ me { id } }");
        assert_eq!(status, 415);
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let (status, v) = app.post_raw(Some(&auth), "application/json", "{ not json");
        assert_eq!(status, 400);
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let (status, _) = app.post_raw(Some(&auth), "application/json", r#"[{"query":"{ me { id } }"}]"#);
        assert_eq!(status, 400, "batches are refused");
    }

    fn get_runs_queries_but_never_mutations(app) {
        let token = app.token("x", Role::Admin);
        let (status, body) = app.get_with_auth("/graphql?query=%7B%20me%20%7B%20externalId%20%7D%20%7D", &token);
        assert_eq!(status, 200);
        assert!(body.contains(r#""externalId":"x""#), "{body}");
        let (status, _) = app.get_with_auth(
            "/graphql?query=mutation%20%7B%20setNothing%20%7D",
            &token,
        );
        assert_eq!(status, 405);
    }

    fn syntax_errors_and_unknown_fields_carry_a_code(app) {
        let v = app.admin("{ me { id ", json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
        let v = app.admin("{ me { shoeSize } }", json!({}));
        assert_eq!(code(&v), "BAD_USER_INPUT");
    }

    fn too_deep_queries_are_refused_before_they_run(app) {
        let deep = "{ leads { nodes { touchpoints { lead { touchpoints { lead { touchpoints { lead { touchpoints { lead { touchpoints { lead { id } } } } } } } } } } } } }";
        let v = app.admin(deep, json!({}));
        assert_eq!(code(&v), "QUERY_TOO_COMPLEX", "{v}");
    }

    fn a_response_carries_a_request_id_header(app) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let id_of = |resp: &ureq::http::Response<ureq::Body>| -> String {
            resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
        };
        let body = r#"{"query":"{ me { id } }"}"#;
        let refused = agent.post(format!("{}/graphql", app.base)).header("Content-Type", "application/json").send(body).unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let token = app.token("admin", funnelgraph::auth::Role::Admin);
        let answered = agent.post(format!("{}/graphql", app.base)).header("Content-Type", "application/json").header("Authorization", &format!("Bearer {token}")).send(body).unwrap();
        assert_eq!(answered.status().as_u16(), 200);
        let health = agent.get(format!("{}/health", app.base)).call().unwrap();
        assert_eq!(health.status().as_u16(), 200);
        let ids = [id_of(&refused), id_of(&answered), id_of(&health)];
        for id in &ids {
            assert!(id.len() >= 8 && id != "-", "a request id on every response: {ids:?}");
        }
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
    }

    fn the_root_is_the_dashboard(app) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        let resp = agent.get(format!("{}/", app.base)).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.headers().get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
        let html = resp.into_body().read_to_string().unwrap();
        assert!(html.contains("/assets/dashboard/app.js") && html.contains("/graphql"), "{html}");
    }
}
