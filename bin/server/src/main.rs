//! `duet-server`: configuration from the environment, logs to stderr, serve until SIGINT or
//! SIGTERM. Any start-up failure is one line on stderr and exit status 1.

use std::io::IsTerminal;
use std::process::ExitCode;

use duet_server::{Config, ServerError, bind, error_line, run};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("duet-server: cannot read .env: {error}");
        return ExitCode::FAILURE;
    }
    // The WebSocket library logs whole frames at trace level: room code and resume tokens.
    // Whatever RUST_LOG asks, it logs at debug at most.
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for quiet in ["tungstenite=debug", "tokio_tungstenite=debug"] {
        if let Ok(directive) = quiet.parse() {
            filter = filter.add_directive(directive);
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let started = tokio::runtime::Runtime::new()
        .map_err(ServerError::Serve)
        .and_then(|runtime| runtime.block_on(start()));
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("duet-server: {}", error_line(&error));
            ExitCode::FAILURE
        }
    }
}

async fn start() -> Result<(), ServerError> {
    let config = Config::from_env()?;
    let listener = bind(&config).await?;
    run(config, listener, shutdown_signal()).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
