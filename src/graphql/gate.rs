//! The schema's front gate: before any root field resolves, the permission table
//! (`auth::policy::OPERATIONS`) must name it and allow the caller's role. A root field the
//! table does not name is refused to everyone, so a new field cannot leak by omission.
//! Resolvers still apply the finer scopes (own campaigns, own leads).

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ErrorExtensions, PathSegment, ServerError, ServerResult, Value};

use super::Session;
use crate::auth::policy;

pub struct Gate;

impl ExtensionFactory for Gate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GateExtension)
    }
}

struct GateExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for GateExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_root = info.path_node.parent.is_none()
            && (info.parent_type == "Query" || info.parent_type == "Mutation");
        if is_root && !info.is_for_introspection && !info.name.starts_with("__") {
            let operation = format!("{}.{}", info.parent_type, info.name);
            let role = ctx
                .data_opt::<Session>()
                .map(|session| session.ctx.caller.role);
            let allowed = role.is_some_and(|role| policy::may_call(role, &operation));
            if !allowed {
                let role = role.map(|r| r.as_str()).unwrap_or("(none)");
                let error =
                    async_graphql::Error::new(format!("role {role} may not call {}", info.name))
                        .extend_with(|_, ext| ext.set("code", "FORBIDDEN"));
                let mut server_error: ServerError = error.into_server_error(Default::default());
                server_error.path = vec![PathSegment::Field(
                    info.alias.unwrap_or(info.name).to_string(),
                )];
                return Err(server_error);
            }
        }
        next.run(ctx, info).await
    }
}
