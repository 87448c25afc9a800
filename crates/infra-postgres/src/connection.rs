//! Opening the database: which URLs are accepted, how they are shown in logs, and migrations.

use std::fmt;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use url::Url;

/// A database URL: `postgres://…` (or `postgresql://…`) or `sqlite://PATH?mode=rwc`.
///
/// Its `Debug` and `Display` hide the password, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// A string that is not a usable database URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("the database URL cannot be parsed: {0}")]
    Unparsable(String),
    #[error("the database URL scheme `{0}` is not supported: use postgres:// or sqlite://")]
    UnsupportedScheme(String),
}

impl DatabaseUrl {
    /// The default: an SQLite file `duet.db` in the working directory, created when missing.
    pub const DEFAULT: &'static str = "sqlite://duet.db?mode=rwc";

    /// Checks that `url` names a PostgreSQL or SQLite database.
    ///
    /// # Errors
    /// [`DatabaseUrlError`] when it does not parse or names another kind of database.
    pub fn parse(url: &str) -> Result<Self, DatabaseUrlError> {
        // Parse errors from `url` never echo the input, so no password can leak through them.
        let parsed =
            Url::parse(url).map_err(|error| DatabaseUrlError::Unparsable(error.to_string()))?;
        match parsed.scheme() {
            "postgres" | "postgresql" | "sqlite" => Ok(Self(url.to_owned())),
            other => Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
        }
    }

    /// Builds a PostgreSQL URL from parts, escaping each one.
    ///
    /// # Errors
    /// [`DatabaseUrlError`] when the host cannot be part of a URL.
    pub fn postgres(
        user: &str,
        password: &str,
        host: &str,
        port: Option<u16>,
        database: &str,
    ) -> Result<Self, DatabaseUrlError> {
        let mut url = Url::parse("postgres://localhost")
            .map_err(|error| DatabaseUrlError::Unparsable(error.to_string()))?;
        let invalid = |what: &str| DatabaseUrlError::Unparsable(format!("invalid {what}"));
        url.set_host(Some(host)).map_err(|_| invalid("host"))?;
        url.set_username(user).map_err(|()| invalid("user"))?;
        if !password.is_empty() {
            url.set_password(Some(password))
                .map_err(|()| invalid("password"))?;
        }
        url.set_port(port).map_err(|()| invalid("port"))?;
        url.set_path(database);
        Ok(Self(url.into()))
    }

    /// The URL as given, password included: for connecting only, never for logs.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this names an SQLite database.
    #[must_use]
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                // Setting a password only fails on URLs that cannot have one, which this has.
                let _ = url.set_password(Some("***"));
                url.into()
            }
            Ok(url) => url.into(),
            Err(_) => "<unparsable URL>".to_owned(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        url: DatabaseUrl,
        #[source]
        source: sea_orm::DbErr,
    },
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[source] sea_orm::DbErr),
}

/// The pool options for `url` with at most `connections` connections.
fn options(url: &DatabaseUrl, connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.expose());
    options
        .max_connections(connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // A connection in steady use is not pinged before each transaction (a round trip
        // less per commit); one idle for a while still is, so a restarted database is noticed.
        .test_before_acquire_if_idle_for(Duration::from_secs(10))
        .sqlx_logging(false);
    options
}

/// Opens the database, tunes SQLite for concurrent use, and applies pending migrations.
///
/// # Errors
/// [`ConnectError`] when the database cannot be reached or migrated.
pub async fn connect(url: &DatabaseUrl) -> Result<DatabaseConnection, ConnectError> {
    // Every live room commits on its own; PostgreSQL merges the flushes of concurrent commits,
    // so more connections mean more commits per flush. SQLite has one writer whatever the pool.
    let connections = if url.is_sqlite() { 8 } else { 48 };
    let connection = Database::connect(options(url, connections))
        .await
        .map_err(|source| ConnectError::Connect {
            url: url.clone(),
            source,
        })?;
    if connection.get_database_backend() == DbBackend::Sqlite {
        // Write-ahead logging lets readers run beside the writer; the setting is stored in
        // the file, so setting it on one pooled connection is enough.
        if let Err(source) = connection
            .execute_unprepared("PRAGMA journal_mode=WAL")
            .await
        {
            let _ = connection.close().await;
            return Err(ConnectError::Connect {
                url: url.clone(),
                source,
            });
        }
    }
    // A migration that fails mid-transaction leaves its connection in the pool: the pool is
    // closed rather than handed on.
    if let Err(error) = Migrator::up(&connection, None).await {
        let _ = connection.close().await;
        return Err(ConnectError::Migrate(error));
    }
    Ok(connection)
}

/// Opens one connection of its own for a writer (a committer, the readiness probe), with the
/// pool's settings, so that the writer can close it after any failure instead of handing a
/// connection in an unknown transaction state back to a pool.
pub(crate) async fn connect_writer(url: &DatabaseUrl) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, 1)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_postgres_and_sqlite_only() {
        assert!(DatabaseUrl::parse("postgres://u:p@localhost:5432/db").is_ok());
        assert!(DatabaseUrl::parse("postgresql://localhost/db").is_ok());
        assert!(DatabaseUrl::parse(DatabaseUrl::DEFAULT).is_ok());
        assert_eq!(
            DatabaseUrl::parse("mysql://localhost/db"),
            Err(DatabaseUrlError::UnsupportedScheme("mysql".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("not a url"),
            Err(DatabaseUrlError::Unparsable(_))
        ));
    }

    #[test]
    fn never_shows_the_password() {
        let url = DatabaseUrl::parse("postgres://duet:s3cret@db.example:5432/duet").expect("valid");
        assert_eq!(url.to_string(), "postgres://duet:***@db.example:5432/duet");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.expose().contains("s3cret"));
    }

    #[test]
    fn builds_a_postgres_url_from_parts() {
        let url = DatabaseUrl::postgres("duet", "p@ss/word", "127.0.0.1", Some(5433), "rooms")
            .expect("valid");
        assert_eq!(
            url.expose(),
            "postgres://duet:p%40ss%2Fword@127.0.0.1:5433/rooms"
        );
        let url = DatabaseUrl::postgres("duet", "", "db", None, "rooms").expect("valid");
        assert_eq!(url.expose(), "postgres://duet@db/rooms");
    }
}
