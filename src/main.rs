//! funnelgraph's entry point: parse the command line, set up logging, hand off.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FUNNELGRAPH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = funnelgraph::cli::Cli::parse();
    let result = actix_web::rt::System::new().block_on(funnelgraph::cli::run(cli));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("funnelgraph: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
