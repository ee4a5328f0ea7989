//! funnelgraph's entry point: parse the command line, set up logging, hand off.

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// glibc gives threads their own malloc arenas (up to eight per core) and never reuses memory
/// freed in one arena for another. Reports run on whichever blocking thread is free, so each
/// arena kept its own peak and the process held their sum: after every report at 1M leads on
/// PostgreSQL, 1.77 GB, against 895 MB for the largest report alone; with two arenas, 953 MB at
/// the same speed. `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread exists; mallopt only
        // sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
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
