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
