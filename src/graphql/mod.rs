//! The GraphQL API: schema build with its limits, the per-request session, and the roots
//! merged from per-area objects.

pub mod accounts;
pub mod bounds;
pub mod compensation;
pub mod csv;
pub mod currency;
pub mod error;
pub mod funnel;
pub mod gate;
pub mod ids;
pub mod import;
pub mod loaders;
pub mod models;
pub mod mutation;
pub mod precheck;
pub mod query;
pub mod reports;
pub mod scalars;
pub mod trusted;
pub mod types;

use async_graphql::{Context, EmptySubscription, InputObject, MergedObject, Schema};

use crate::domain::period::Period;
use crate::service::{AppError, Ctx};

/// What every resolver of one request shares: the service context and the loaders.
pub struct Session {
    pub ctx: Ctx,
    pub loaders: loaders::Loaders,
}

impl Session {
    pub fn new(ctx: Ctx) -> Session {
        let loaders = loaders::Loaders::new(&ctx.db);
        Session { ctx, loaders }
    }
}

/// The request's session. Every request the server executes carries one.
pub fn session<'a>(ctx: &Context<'a>) -> &'a Session {
    ctx.data_unchecked::<Session>()
}

/// Half-open range of UTC days: from <= day < to.
#[derive(InputObject, Clone, Copy, Debug)]
pub struct PeriodInput {
    pub from: scalars::Date,
    pub to: scalars::Date,
}

impl PeriodInput {
    pub fn checked(self) -> Result<Period, AppError> {
        Period::new(self.from.0, self.to.0).map_err(|e| AppError::BadInput(e.to_string()))
    }
}

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::EntityQuery,
    reports::ReportQueryRoot,
    compensation::CompensationQuery,
    funnel::FunnelQuery,
    accounts::AccountQuery,
    currency::CurrencyQuery,
    models::ModelQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::EntityMutation,
    compensation::CompensationMutation,
    funnel::FunnelMutation,
    accounts::AccountMutation,
    currency::CurrencyMutation,
    models::ModelMutation,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Limits every query is checked against before it runs (SPEC §7).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub depth: usize,
    pub complexity: usize,
    pub recursive_depth: usize,
    pub directives: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 12,
            complexity: 250_000,
            recursive_depth: 32,
            directives: 10,
            introspection: true,
        }
    }
}

pub fn build_schema(limits: Limits) -> AppSchema {
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
    .register_output_type::<types::Node>()
    .extension(gate::Gate)
    // Depth and complexity are checked by `bounds`, which says which limit and by how much.
    .extension(bounds::Bounds(limits))
    .limit_recursive_depth(limits.recursive_depth)
    .limit_directives(limits.directives);
    if !limits.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(Limits::default()).sdl()
}
