//! `duet-server`: configuration from the environment, logs to stderr, serve until SIGINT or
//! SIGTERM. Any start-up failure is one line on stderr and exit status 1.
//!
//! `duet-server token --sub … --room … --role …` prints a token signed with
//! `DUET_AUTH_SECRET` instead, for an operator's first owner token and for scripts.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use duet_server::{Config, ServerError, TokenRequest, bind, error_line, mint_token, run};
use tracing_subscriber::EnvFilter;

/// The Duet server. Configured by environment variables (README.md); with no command, serves.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Prints a token signed with DUET_AUTH_SECRET, as a team's backend would mint one.
    Token {
        /// The user's stable id.
        #[arg(long)]
        sub: String,
        /// A room id, or * for every room.
        #[arg(long)]
        room: String,
        /// viewer, editor or owner.
        #[arg(long)]
        role: String,
        /// The name others see.
        #[arg(long)]
        name: Option<String>,
        /// How long the token lasts.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("duet-server: cannot read .env: {error}");
        return ExitCode::FAILURE;
    }
    if let Some(Command::Token {
        sub,
        room,
        role,
        name,
        ttl_secs,
    }) = cli.command
    {
        let request = TokenRequest {
            subject: sub,
            name,
            room,
            role,
            ttl_secs,
        };
        let minted = Config::from_env()
            .map_err(|error| error_line(&error))
            .and_then(|config| mint_token(&config, request).map_err(|error| error_line(&error)));
        return match minted {
            Ok(token) => {
                println!("{token}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("duet-server: {error}");
                ExitCode::FAILURE
            }
        };
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
    // Listening for the signals starts before anything else, so that a SIGTERM that comes as
    // soon as the server says it listens still stops it cleanly.
    let shutdown = shutdown_signal();
    let config = Config::from_env()?;
    let listener = bind(&config).await?;
    run(config, listener, shutdown).await
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM; listens from the moment it is called.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            (interrupt, terminate) => {
                let error = interrupt.err().or(terminate.err());
                tracing::warn!(error = ?error, "cannot listen for SIGINT or SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("shutting down");
    }
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}
