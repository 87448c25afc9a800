//! The server's configuration, read once from the environment (and a `.env` file, if present).

use std::net::SocketAddr;
use std::time::Duration;

use duet_app::LiveSettings;
use duet_infra_postgres::{DatabaseUrl, DatabaseUrlError};
use duet_infra_ws::{AllowedOrigins, AuthSecret, ConnectionLimits, MessageRate, Settings};
use duet_live::DEFAULT_MAX_MEMBERS;

/// How many events a WebSocket client may fall behind before its room drops it, by default.
pub const DEFAULT_SEND_QUEUE: usize = 256;

/// Everything the server needs to start. Its `Debug` hides the database password.
#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    pub settings: Settings,
    pub live: LiveSettings,
    /// How many events a WebSocket client may fall behind before its room drops it.
    pub send_queue: usize,
    /// How many members (WebSocket connections) one room takes.
    pub max_members: usize,
    pub autocomplete: AutocompleteEngine,
}

/// Which engine answers completion requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutocompleteEngine {
    /// The local, language-aware engine (the default).
    Local,
    /// The prototype's rule.
    Canned,
    /// An OpenAI-compatible completion server, falling back to the local engine.
    OpenAi(OpenAiSettings),
}

/// A secret, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

/// How to reach an OpenAI-compatible completion server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAiSettings {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
    pub timeout: Duration,
    pub max_tokens: usize,
    pub fill_in_the_middle: bool,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DATABASE_URL is not usable: {0}")]
    DatabaseUrl(#[source] DatabaseUrlError),
    #[error("the DB_* variables do not make a PostgreSQL URL: {0}")]
    DatabaseParts(#[source] DatabaseUrlError),
    #[error("{name} must be {expected}, got `{value}`")]
    Invalid {
        name: &'static str,
        expected: &'static str,
        value: String,
    },
}

/// The address served when `DUET_BIND` is unset: the prototype's.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, which answers a variable's value.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Settings::default();
        let settings = Settings {
            auth: auth_secret(&lookup)?,
            allowed_origins: origins(lookup("DUET_CORS_ORIGINS")),
            max_body_bytes: positive(&lookup, "DUET_MAX_BODY_BYTES", defaults.max_body_bytes)?,
            max_frame_bytes: positive(&lookup, "DUET_MAX_FRAME_BYTES", defaults.max_frame_bytes)?,
            shutdown_grace: seconds(&lookup, "DUET_SHUTDOWN_GRACE_SECS", 5)?,
            ping_interval: seconds(&lookup, "DUET_PING_INTERVAL_SECS", 30)?,
            message_rate: MessageRate {
                per_second: u32::try_from(positive(
                    &lookup,
                    "DUET_MAX_MESSAGES_PER_SEC",
                    usize::try_from(defaults.message_rate.per_second).unwrap_or(usize::MAX),
                )?)
                .unwrap_or(u32::MAX),
                abuse_after: seconds(&lookup, "DUET_FLOOD_CLOSE_SECS", 10)?,
            },
            connections: connection_limits(&lookup)?,
            rooms_per_minute: u32::try_from(positive(
                &lookup,
                "DUET_ROOMS_PER_MINUTE",
                usize::try_from(defaults.rooms_per_minute).unwrap_or(usize::MAX),
            )?)
            .unwrap_or(u32::MAX),
        };
        let live_defaults = LiveSettings::default();
        let live = LiveSettings {
            history: positive(&lookup, "DUET_HISTORY_OPS", live_defaults.history)?,
            snapshot_every: positive(
                &lookup,
                "DUET_SNAPSHOT_EVERY",
                usize::try_from(live_defaults.snapshot_every).unwrap_or(usize::MAX),
            )?
            .try_into()
            .unwrap_or(u64::MAX),
            history_bytes: positive(&lookup, "DUET_HISTORY_BYTES", live_defaults.history_bytes)?,
            max_room_bytes: max_room_bytes(&lookup, live_defaults.max_room_bytes)?,
        };
        let bind = lookup("DUET_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = bind.parse().map_err(|_| ConfigError::Invalid {
            name: "DUET_BIND",
            expected: "an address such as 127.0.0.1:8000",
            value: bind,
        })?;
        let autocomplete = match lookup("DUET_AUTOCOMPLETE").as_deref().map(str::trim) {
            None | Some("local") => AutocompleteEngine::Local,
            Some("canned") => AutocompleteEngine::Canned,
            Some("openai") => AutocompleteEngine::OpenAi(openai(&lookup)?),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "DUET_AUTOCOMPLETE",
                    expected: "`local`, `canned` or `openai`",
                    value: other.to_owned(),
                });
            }
        };
        Ok(Self {
            database_url: database_url(&lookup)?,
            bind,
            settings,
            live,
            send_queue: positive(&lookup, "DUET_SEND_QUEUE", DEFAULT_SEND_QUEUE)?,
            max_members: positive(&lookup, "DUET_MAX_MEMBERS_PER_ROOM", DEFAULT_MAX_MEMBERS)?,
            autocomplete,
        })
    }
}

/// `DUET_AUTH_SECRET`: unset leaves authentication off; set, it must be long enough to sign
/// tokens safely. Set but empty is refused like any short secret: a deployment template that
/// meant to set it must not leave every room open. Its bytes are the key as they are (a
/// base64 text is not decoded).
fn auth_secret(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<AuthSecret>, ConfigError> {
    let Some(secret) = lookup("DUET_AUTH_SECRET") else {
        return Ok(None);
    };
    AuthSecret::new(secret)
        .map(Some)
        .map_err(|error| ConfigError::Invalid {
            name: "DUET_AUTH_SECRET",
            expected: "at least 32 bytes (e.g. `openssl rand -base64 48`)",
            // The secret itself is never shown, not even a wrong one.
            value: format!("{} bytes", error.length),
        })
}

/// `DUET_MAX_ROOM_BYTES`, or the older `DUET_MAX_ROOM_SIZE` (which counted UTF-16 units, and
/// is read as bytes now).
fn max_room_bytes(
    lookup: &impl Fn(&str) -> Option<String>,
    default: usize,
) -> Result<usize, ConfigError> {
    if lookup("DUET_MAX_ROOM_BYTES").is_none() && lookup("DUET_MAX_ROOM_SIZE").is_some() {
        return positive(lookup, "DUET_MAX_ROOM_SIZE", default);
    }
    positive(lookup, "DUET_MAX_ROOM_BYTES", default)
}

fn connection_limits(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<ConnectionLimits, ConfigError> {
    let defaults = ConnectionLimits::default();
    let max_connections = positive(lookup, "DUET_MAX_CONNECTIONS", defaults.max_connections)?;
    // The connection cap is a semaphore's permit count, which has its own ceiling.
    if max_connections > tokio::sync::Semaphore::MAX_PERMITS
        || u32::try_from(max_connections).is_err()
    {
        return Err(ConfigError::Invalid {
            name: "DUET_MAX_CONNECTIONS",
            expected: "a positive whole number below 2^32",
            value: max_connections.to_string(),
        });
    }
    Ok(ConnectionLimits {
        header_timeout: seconds_or(lookup, "DUET_HEADER_TIMEOUT_SECS", defaults.header_timeout)?,
        idle_timeout: seconds_or(lookup, "DUET_IDLE_TIMEOUT_SECS", defaults.idle_timeout)?,
        body_timeout: seconds_or(lookup, "DUET_BODY_TIMEOUT_SECS", defaults.body_timeout)?,
        handshake_timeout: seconds_or(
            lookup,
            "DUET_HANDSHAKE_TIMEOUT_SECS",
            defaults.handshake_timeout,
        )?,
        max_connections,
        max_connections_per_ip: positive(
            lookup,
            "DUET_MAX_CONNECTIONS_PER_IP",
            defaults.max_connections_per_ip,
        )?,
        max_uri_bytes: positive(lookup, "DUET_MAX_URI_BYTES", defaults.max_uri_bytes)?,
        max_header_bytes: positive(lookup, "DUET_MAX_HEADER_BYTES", defaults.max_header_bytes)?,
        max_headers: positive(lookup, "DUET_MAX_HEADERS", defaults.max_headers)?,
    })
}

fn seconds_or(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    seconds(
        lookup,
        name,
        usize::try_from(default.as_secs()).unwrap_or(usize::MAX),
    )
}

fn openai(lookup: &impl Fn(&str) -> Option<String>) -> Result<OpenAiSettings, ConfigError> {
    let base_url = lookup("DUET_OPENAI_BASE_URL").ok_or(ConfigError::Invalid {
        name: "DUET_OPENAI_BASE_URL",
        expected: "the completion server's URL when DUET_AUTOCOMPLETE=openai",
        value: String::new(),
    })?;
    let parsed = url::Url::parse(&base_url).map_err(|_| ConfigError::Invalid {
        name: "DUET_OPENAI_BASE_URL",
        expected: "a URL such as http://127.0.0.1:8080/v1",
        value: base_url.clone(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError::Invalid {
            name: "DUET_OPENAI_BASE_URL",
            expected: "an http:// or https:// URL",
            value: base_url,
        });
    }
    let fill_in_the_middle = match lookup("DUET_OPENAI_FIM").as_deref().map(str::trim) {
        None | Some("true" | "1" | "yes") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: "DUET_OPENAI_FIM",
                expected: "true or false",
                value: other.to_owned(),
            });
        }
    };
    Ok(OpenAiSettings {
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_key: lookup("DUET_OPENAI_API_KEY")
            .filter(|key| !key.is_empty())
            .map(Secret),
        model: lookup("DUET_OPENAI_MODEL").unwrap_or_else(|| "default".to_owned()),
        timeout: Duration::from_millis(
            u64::try_from(positive(lookup, "DUET_OPENAI_TIMEOUT_MS", 1500)?).unwrap_or(u64::MAX),
        ),
        max_tokens: positive(lookup, "DUET_OPENAI_MAX_TOKENS", 64)?,
        fill_in_the_middle,
    })
}

fn database_url(lookup: &impl Fn(&str) -> Option<String>) -> Result<DatabaseUrl, ConfigError> {
    if let Some(url) = lookup("DATABASE_URL") {
        return DatabaseUrl::parse(&url).map_err(ConfigError::DatabaseUrl);
    }
    // The prototype's variables, kept so its deployments start unchanged.
    if let (Some(user), Some(password), Some(host), Some(name)) = (
        lookup("DB_USER"),
        lookup("DB_PASS"),
        lookup("DB_HOST"),
        lookup("DB_NAME"),
    ) {
        let port = match lookup("DB_PORT") {
            None => None,
            Some(port) => Some(port.parse().map_err(|_| ConfigError::Invalid {
                name: "DB_PORT",
                expected: "a port number",
                value: port,
            })?),
        };
        return DatabaseUrl::postgres(&user, &password, &host, port, &name)
            .map_err(ConfigError::DatabaseParts);
    }
    DatabaseUrl::parse(DatabaseUrl::DEFAULT).map_err(ConfigError::DatabaseUrl)
}

fn origins(value: Option<String>) -> AllowedOrigins {
    match value {
        None => AllowedOrigins::Any,
        Some(value) if value.trim() == "*" => AllowedOrigins::Any,
        Some(value) => AllowedOrigins::List(
            value
                .split(',')
                .map(str::trim)
                .filter(|origin| !origin.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
    }
}

/// The longest duration any setting may name: longer ones would overflow the clock's
/// arithmetic (an instant plus the duration) instead of meaning "never".
const MAX_SECONDS: usize = 366 * 24 * 60 * 60;

fn seconds(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
) -> Result<Duration, ConfigError> {
    let seconds = positive(lookup, name, default)?;
    if seconds > MAX_SECONDS {
        return Err(ConfigError::Invalid {
            name,
            expected: "a number of seconds up to a year (31622400)",
            value: seconds.to_string(),
        });
    }
    Ok(Duration::from_secs(
        u64::try_from(seconds).unwrap_or(u64::MAX),
    ))
}

fn positive(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: usize,
) -> Result<usize, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        // Bounded, so that no count (a queue's capacity, say) can make a library panic.
        Some(value) => match value.trim().parse::<usize>() {
            Ok(number) if number > 0 && number <= 1 << 32 => Ok(number),
            _ => Err(ConfigError::Invalid {
                name,
                expected: "a positive whole number up to 4294967296",
                value,
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_to_sqlite_on_the_prototype_port() {
        let config = config(&[]).expect("valid");
        assert_eq!(config.database_url.expose(), DatabaseUrl::DEFAULT);
        assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.settings, Settings::default());
        assert_eq!(config.autocomplete, AutocompleteEngine::Local);
    }

    #[test]
    fn builds_postgres_from_the_prototype_variables() {
        let config = config(&[
            ("DB_USER", "duet"),
            ("DB_PASS", "s3cret"),
            ("DB_HOST", "db"),
            ("DB_NAME", "duet"),
            ("DB_PORT", "5433"),
        ])
        .expect("valid");
        assert_eq!(
            config.database_url.expose(),
            "postgres://duet:s3cret@db:5433/duet"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn database_url_wins_over_the_parts() {
        let config = config(&[
            ("DATABASE_URL", "sqlite://other.db?mode=rwc"),
            ("DB_USER", "duet"),
            ("DB_PASS", "x"),
            ("DB_HOST", "db"),
            ("DB_NAME", "duet"),
        ])
        .expect("valid");
        assert_eq!(config.database_url.expose(), "sqlite://other.db?mode=rwc");
    }

    #[test]
    fn reads_the_edge_settings() {
        let config = config(&[
            ("DUET_BIND", "0.0.0.0:9000"),
            ("DUET_CORS_ORIGINS", "https://a.example, https://b.example"),
            ("DUET_MAX_BODY_BYTES", "2048"),
            ("DUET_MAX_FRAME_BYTES", "4096"),
            ("DUET_SEND_QUEUE", "8"),
            ("DUET_MAX_MESSAGES_PER_SEC", "50"),
            ("DUET_FLOOD_CLOSE_SECS", "3"),
            ("DUET_HEADER_TIMEOUT_SECS", "3"),
            ("DUET_IDLE_TIMEOUT_SECS", "20"),
            ("DUET_BODY_TIMEOUT_SECS", "7"),
            ("DUET_HANDSHAKE_TIMEOUT_SECS", "4"),
            ("DUET_MAX_CONNECTIONS", "500"),
            ("DUET_MAX_CONNECTIONS_PER_IP", "50"),
            ("DUET_ROOMS_PER_MINUTE", "12"),
            ("DUET_MAX_URI_BYTES", "1000"),
            ("DUET_MAX_HEADER_BYTES", "4000"),
            ("DUET_MAX_HEADERS", "20"),
        ])
        .expect("valid");
        assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(
            config.settings.allowed_origins,
            AllowedOrigins::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
        assert_eq!(config.settings.max_body_bytes, 2048);
        assert_eq!(config.settings.max_frame_bytes, 4096);
        assert_eq!(config.send_queue, 8);
        assert_eq!(config.settings.rooms_per_minute, 12);
        assert_eq!(
            config.settings.message_rate,
            MessageRate {
                per_second: 50,
                abuse_after: Duration::from_secs(3)
            }
        );
        assert_eq!(
            config.settings.connections,
            ConnectionLimits {
                header_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(20),
                body_timeout: Duration::from_secs(7),
                handshake_timeout: Duration::from_secs(4),
                max_connections: 500,
                max_connections_per_ip: 50,
                max_uri_bytes: 1000,
                max_header_bytes: 4000,
                max_headers: 20,
            }
        );
    }

    #[test]
    fn reads_the_auth_secret_and_the_room_quotas_without_ever_showing_the_secret() {
        let defaults = config(&[]).expect("valid");
        assert_eq!(defaults.settings.auth, None);
        assert_eq!(defaults.max_members, DEFAULT_MAX_MEMBERS);
        let secret = "a-long-enough-secret-for-hs256-tokens";
        let configured = config(&[
            ("DUET_AUTH_SECRET", secret),
            ("DUET_MAX_MEMBERS_PER_ROOM", "12"),
            ("DUET_MAX_ROOM_BYTES", "1000"),
        ])
        .expect("valid");
        assert_eq!(
            configured.settings.auth,
            Some(AuthSecret::new(secret).expect("long enough"))
        );
        assert_eq!(configured.max_members, 12);
        assert_eq!(configured.live.max_room_bytes, 1000);
        assert!(!format!("{configured:?}").contains(secret));
        let short = config(&[("DUET_AUTH_SECRET", "almost-but-not-quite-32-bytes")])
            .expect_err("too short")
            .to_string();
        assert!(!short.contains("almost"), "{short}");
        // The older name still works.
        let older = config(&[("DUET_MAX_ROOM_SIZE", "77")]).expect("valid");
        assert_eq!(older.live.max_room_bytes, 77);
    }

    #[test]
    fn reads_the_autocomplete_engine() {
        assert_eq!(
            config(&[("DUET_AUTOCOMPLETE", "canned")])
                .expect("valid")
                .autocomplete,
            AutocompleteEngine::Canned
        );
        let config = config(&[
            ("DUET_AUTOCOMPLETE", "openai"),
            ("DUET_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1/"),
            ("DUET_OPENAI_API_KEY", "sk-secret"),
            ("DUET_OPENAI_MODEL", "qwen2.5-coder"),
            ("DUET_OPENAI_TIMEOUT_MS", "500"),
            ("DUET_OPENAI_FIM", "false"),
        ])
        .expect("valid");
        let AutocompleteEngine::OpenAi(settings) = &config.autocomplete else {
            panic!("expected openai, got {:?}", config.autocomplete);
        };
        assert_eq!(settings.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(settings.model, "qwen2.5-coder");
        assert_eq!(settings.timeout, Duration::from_millis(500));
        assert!(!settings.fill_in_the_middle);
        assert!(!format!("{config:?}").contains("sk-secret"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases = [
            ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
            ("DATABASE_URL", "::nonsense", "DATABASE_URL"),
            ("DUET_BIND", "localhost", "DUET_BIND"),
            ("DUET_MAX_FRAME_BYTES", "0", "DUET_MAX_FRAME_BYTES"),
            ("DUET_SEND_QUEUE", "-3", "DUET_SEND_QUEUE"),
            ("DUET_SEND_QUEUE", "9999999999999999999", "DUET_SEND_QUEUE"),
            (
                "DUET_PING_INTERVAL_SECS",
                "99999999999",
                "DUET_PING_INTERVAL_SECS",
            ),
            ("DUET_MAX_ROOM_SIZE", "0", "DUET_MAX_ROOM_SIZE"),
            ("DUET_MAX_ROOM_BYTES", "0", "DUET_MAX_ROOM_BYTES"),
            (
                "DUET_MAX_MEMBERS_PER_ROOM",
                "0",
                "DUET_MAX_MEMBERS_PER_ROOM",
            ),
            ("DUET_AUTH_SECRET", "short", "DUET_AUTH_SECRET"),
            ("DUET_AUTH_SECRET", "", "DUET_AUTH_SECRET"),
            ("DUET_HEADER_TIMEOUT_SECS", "0", "DUET_HEADER_TIMEOUT_SECS"),
            ("DUET_IDLE_TIMEOUT_SECS", "1.5", "DUET_IDLE_TIMEOUT_SECS"),
            ("DUET_BODY_TIMEOUT_SECS", "soon", "DUET_BODY_TIMEOUT_SECS"),
            (
                "DUET_HANDSHAKE_TIMEOUT_SECS",
                "",
                "DUET_HANDSHAKE_TIMEOUT_SECS",
            ),
            ("DUET_MAX_CONNECTIONS", "0", "DUET_MAX_CONNECTIONS"),
            (
                "DUET_MAX_CONNECTIONS",
                "99999999999",
                "DUET_MAX_CONNECTIONS",
            ),
            (
                "DUET_MAX_CONNECTIONS_PER_IP",
                "0",
                "DUET_MAX_CONNECTIONS_PER_IP",
            ),
            ("DUET_ROOMS_PER_MINUTE", "0", "DUET_ROOMS_PER_MINUTE"),
            ("DUET_ROOMS_PER_MINUTE", "-5", "DUET_ROOMS_PER_MINUTE"),
            ("DUET_MAX_URI_BYTES", "-1", "DUET_MAX_URI_BYTES"),
            ("DUET_MAX_HEADER_BYTES", "0", "DUET_MAX_HEADER_BYTES"),
            ("DUET_MAX_HEADERS", "many", "DUET_MAX_HEADERS"),
            ("DUET_AUTOCOMPLETE", "gpt", "DUET_AUTOCOMPLETE"),
            ("DUET_AUTOCOMPLETE", "openai", "DUET_OPENAI_BASE_URL"),
        ];
        for (name, value, mentioned) in cases {
            let error = config(&[(name, value)]).expect_err(name).to_string();
            assert!(error.contains(mentioned), "{name}={value}: {error}");
        }
    }
}
