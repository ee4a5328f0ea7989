//! The query bounds of SPEC §7, checked where async-graphql measures them, each refusal typed
//! (`QUERY_TOO_COMPLEX`) and saying which limit was passed and by how much. Errors of the
//! parse and validation phases that are not bounds are the client's malformed request
//! (`BAD_USER_INPUT`). No code is ever chosen from an error's text.
//!
//! In the parse phase, a document that does not parse is a syntax error (bad input); one
//! that parses failed async-graphql's recursion or directive bound (no other extension of
//! this schema acts in that phase; one that did would have to set its own code).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};

use super::trusted::{TrustedRequest, ValidateOnly};
use super::Limits;

pub struct Bounds(pub Limits);

impl ExtensionFactory for Bounds {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BoundsExtension(self.0))
    }
}

struct BoundsExtension(Limits);

fn with_code(mut e: ServerError, code: &'static str) -> ServerError {
    let ext = e.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
    e
}

fn too_complex(message: String) -> ServerError {
    with_code(ServerError::new(message, None), "QUERY_TOO_COMPLEX")
}

#[async_graphql::async_trait::async_trait]
impl Extension for BoundsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|e| {
            // A document the precheck could not parse reaches here unparsed: its syntax error
            // (with its location) is the client's malformed input. One that parses failed a
            // bound.
            if async_graphql::parser::parse_query(query).is_err() {
                return with_code(e, "BAD_USER_INPUT");
            }
            let limits = self.0;
            too_complex(format!(
                "{} (bounds: selections nested through fragments at most {} deep, at most {} directives on a field)",
                e.message.trim_end_matches('.'),
                limits.recursive_depth,
                limits.directives
            ))
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        // A trusted document was validated, and its bounds checked, when the server started.
        if ctx.data_opt::<TrustedRequest>().is_some() {
            return Ok(ValidationResult {
                cache_control: Default::default(),
                complexity: 0,
                depth: 0,
            });
        }
        let result = next.run(ctx).await.map_err(|errors| -> Vec<ServerError> {
            errors
                .into_iter()
                .map(|e| with_code(e, "BAD_USER_INPUT"))
                .collect()
        })?;
        let limits = self.0;
        if result.depth > limits.depth {
            return Err(vec![too_complex(format!(
                "the query nests {} levels deep; the limit is {} (over by {})",
                result.depth,
                limits.depth,
                result.depth - limits.depth
            ))]);
        }
        if result.complexity > limits.complexity {
            return Err(vec![too_complex(format!(
                "the query's complexity is {} (each field counts 1, a list field counts its page size `first` times its selection); the limit is {} (over by {}); ask for smaller pages or fewer fields",
                result.complexity,
                limits.complexity,
                result.complexity - limits.complexity
            ))]);
        }
        Ok(result)
    }

    /// A request made only to validate a document (a trusted document at start-up) stops
    /// here, before anything resolves.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<ValidateOnly>().is_some() {
            return Response::default();
        }
        next.run(ctx, operation_name).await
    }
}
