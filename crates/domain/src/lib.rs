//! funnelgraph's rules as pure functions, no I/O: money and exact fractions, largest-remainder
//! allocation, the attribution models and the Markov chain, reports, compensation, scoring,
//! the lead lifecycle, periods and statistics. This crate depends on no framework (no diesel,
//! actix, async-graphql or tokio), so the rules cannot reach I/O even by accident, build and
//! test on their own in seconds (`cargo test -p funnelgraph-domain`), and could serve a batch
//! job. The server re-exports it as `funnelgraph::domain`.

pub mod account;
pub mod allocation;
pub mod attribution;
pub mod compensation;
pub mod currency;
pub mod deal;
pub mod exact;
pub mod handoff;
pub mod iso4217;
pub mod markov;
pub mod markov_higher;
pub mod money;
pub mod period;
pub mod report;
pub mod scoring;
pub mod shapley;
pub mod stage;
pub mod stats;
