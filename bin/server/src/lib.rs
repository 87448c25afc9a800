//! The Duet server: reads its [`Config`], opens the database, wires the adapters into the use
//! cases and serves. [`run`] takes a bound listener and a shutdown future so that tests can run
//! the real server in process.

mod config;

use std::future::Future;
use std::sync::Arc;

use duet_app::ports::{KeyStore, SystemClock};
use duet_app::{Autocomplete, ResumeTokens, Rooms};
use duet_domain::{Autocompleter, CannedAutocompleter, LocalAutocompleter};
use duet_infra_postgres::{ConnectError, SqlRoomRepository, connect};
use duet_infra_ws::{Services, Wire};
use duet_live::Registry;
use tokio::net::TcpListener;

pub use config::{AutocompleteEngine, Config, ConfigError, DEFAULT_BIND, OpenAiSettings, Secret};
pub use duet_infra_ws::{AllowedOrigins, AuthSecret, ConnectionLimits, Settings};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] ConnectError),
    #[error("cannot read or store the key that signs resume tokens: {0}")]
    Key(#[source] duet_app::ports::RepositoryError),
    #[error("the server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// What a token minted with [`mint_token`] grants.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub subject: String,
    pub name: Option<String>,
    /// A room id, or `*`.
    pub room: String,
    /// `viewer`, `editor` or `owner`.
    pub role: String,
    pub ttl_secs: u64,
}

/// Why a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("DUET_AUTH_SECRET is not set: tokens need the server's secret")]
    NoSecret,
    #[error("{0}")]
    Invalid(String),
    #[error("the token could not be encoded: {0}")]
    Encoding(#[source] duet_infra_ws::auth::EncodingError),
}

/// A token signed with the configured secret, as a team's backend would mint it: for an
/// operator's first owner token, for scripts and for tests.
///
/// # Errors
/// [`MintError`] when authentication is off or the request cannot be a token.
pub fn mint_token(config: &Config, request: TokenRequest) -> Result<String, MintError> {
    use duet_domain::access::{Grant, Role, Rooms};
    let secret = config.settings.auth.as_ref().ok_or(MintError::NoSecret)?;
    let rooms = Rooms::parse(&request.room)
        .map_err(|_| MintError::Invalid("--room must be a room id or *".into()))?;
    let role = request
        .role
        .parse::<Role>()
        .map_err(|error| MintError::Invalid(error.to_string()))?;
    if request.subject.is_empty() {
        return Err(MintError::Invalid("--sub must not be empty".into()));
    }
    let now = duet_infra_ws::auth::now_secs();
    let grant = Grant {
        subject: request.subject,
        name: request.name,
        rooms,
        role,
        expires_at: now.saturating_add(request.ttl_secs),
    };
    duet_infra_ws::Authority::new(secret)
        .mint(&grant, now)
        .map_err(MintError::Encoding)
}

/// Binds the configured address.
///
/// # Errors
/// [`ServerError::Bind`] when the address is in use or not available.
pub async fn bind(config: &Config) -> Result<TcpListener, ServerError> {
    TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            address: config.bind,
            source,
        })
}

/// Opens and migrates the database, then serves on `listener` until `shutdown` completes.
///
/// # Errors
/// [`ServerError`] when the database cannot be opened or the listener fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let connection = connect(&config.database_url).await?;
    let repository = Arc::new(SqlRoomRepository::new(
        connection.clone(),
        &config.database_url,
    ));
    let resume_key = repository.resume_key().await.map_err(ServerError::Key)?;
    let engine: Arc<dyn Autocompleter> = match &config.autocomplete {
        AutocompleteEngine::Local => Arc::new(LocalAutocompleter),
        AutocompleteEngine::Canned => Arc::new(CannedAutocompleter),
        AutocompleteEngine::OpenAi(settings) => Arc::new(open_ai(settings)),
    };
    let rooms = Rooms::with_settings(repository.clone(), Arc::new(SystemClock), config.live)
        .with_resume_tokens(ResumeTokens::new(resume_key));
    let services = Services {
        live: Arc::new(
            Registry::new(rooms.clone(), Wire, config.send_queue)
                .with_max_members(config.max_members),
        ),
        rooms,
        autocomplete: Autocomplete::new(engine),
        health: repository,
    };
    let address = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!(%address, database = %config.database_url, "duet-server listening");
    warn_if_over_the_open_file_limit(config.settings.connections.max_connections);
    if config.settings.auth.is_none() && !address.ip().is_loopback() {
        tracing::warn!(
            %address,
            "authentication is off (DUET_AUTH_SECRET is not set) and the server listens beyond \
             this machine: anyone who can reach it can read, edit and delete every room"
        );
    }
    duet_infra_ws::serve(listener, services, config.settings, shutdown)
        .await
        .map_err(ServerError::Serve)?;
    let _ = connection.close().await;
    tracing::info!("duet-server stopped");
    Ok(())
}

/// Past the process's open-file limit, accepting fails before the connection cap can answer
/// 503, so a cap above it is worth a warning. (Linux only: elsewhere nothing is checked.)
fn warn_if_over_the_open_file_limit(max_connections: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| open_file_limit(&limits))
    else {
        return;
    };
    if u64::try_from(max_connections).unwrap_or(u64::MAX) >= limit {
        tracing::warn!(
            max_connections,
            open_file_limit = limit,
            "DUET_MAX_CONNECTIONS is not below the open-file limit (ulimit -n): connections \
             past that limit wait unanswered instead of getting 503"
        );
    }
}

/// The soft limit in the "Max open files" line of `/proc/self/limits`; `None` when unlimited
/// or unreadable.
fn open_file_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn open_ai(settings: &OpenAiSettings) -> duet_infra_openai::OpenAiAutocompleter {
    duet_infra_openai::OpenAiAutocompleter::new(duet_infra_openai::OpenAiConfig {
        base_url: settings.base_url.clone(),
        api_key: settings.api_key.as_ref().map(|key| key.0.clone()),
        model: settings.model.clone(),
        timeout: settings.timeout,
        max_tokens: settings.max_tokens,
        fill_in_the_middle: settings.fill_in_the_middle,
    })
}

/// Formats an error with its causes on one line, `outer: inner: innermost`.
#[must_use]
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !line.contains(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::open_file_limit;

    #[test]
    fn reads_the_soft_open_file_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             63422                63422                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(open_file_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(open_file_limit(unlimited), None);
        assert_eq!(open_file_limit(""), None);
    }
}
