//! funnelgraph's entry point: parse the command line, set up logging, hand off.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: the journey index is a million small allocations, and each
/// report allocates and frees thousands more while a write load runs. glibc's allocator spent
/// most of a `campaignRoi` in `_int_malloc` and `malloc_consolidate` over that heap (capped at
/// two arenas, as more arenas each kept their own peak); mimalloc's per-thread free lists keep
/// both the time and the peak down. Its v2 line: v3 held ~100 MB more of the loaded index
/// (1,083 against 979 MB at `large`) at the same report latency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("FUNNELGRAPH_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: files, pipes and log collectors get plain text.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
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
