//! Pure domain logic, no I/O: money, periods, stages. Nothing here knows diesel, actix or
//! async-graphql, so the rules can be read and tested alone.

pub mod allocation;
pub mod attribution;
pub mod compensation;
pub mod exact;
pub mod markov;
pub mod money;
pub mod period;
pub mod report;
pub mod scoring;
pub mod stage;
pub mod stats;
