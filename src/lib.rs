//! funnelgraph: a GraphQL API that puts marketing and sales on one set of numbers.
//!
//! Layers, with arrows pointing down only: `graphql` → `service` → `domain` + `repo` → `db`.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
/// The rules, in their own crate (`crates/domain`): pure, framework-free, tested alone.
pub use funnelgraph_domain as domain;
pub mod generate;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod repo;
pub mod rng;
pub mod service;
pub mod ttl;
pub mod warehouse;
