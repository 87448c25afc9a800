//! Scratch databases for tests (feature `test-support`): a fresh SQLite file or a fresh
//! PostgreSQL database per test, migrated, and removed when dropped.

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use url::Url;

use crate::{ConnectError, DatabaseUrl, SqlRoomRepository, connect};

/// The PostgreSQL server tests use when `TEST_DATABASE_URL` is unset.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

enum Scratch {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// A database that exists for one test.
pub struct TestDatabase {
    url: DatabaseUrl,
    scratch: Scratch,
}

impl TestDatabase {
    /// A new SQLite file in a temporary directory.
    ///
    /// # Panics
    /// When no temporary directory can be made.
    #[must_use]
    pub fn sqlite() -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("duet.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}?mode=rwc", path.display()))
            .expect("a valid SQLite URL");
        Self {
            url,
            scratch: Scratch::Sqlite(directory),
        }
    }

    /// A new, empty database on the PostgreSQL server named by `TEST_DATABASE_URL`.
    ///
    /// When that server cannot be reached this returns `None` after printing a loud notice, so
    /// that a developer without PostgreSQL can still run the rest of the tests; under `CI=true`
    /// it panics instead, so CI never passes without having run them.
    ///
    /// # Panics
    /// Under CI when PostgreSQL is unreachable, and when the scratch database cannot be made.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let admin = match Database::connect(admin_url.as_str()).await {
            Ok(admin) => admin,
            Err(error) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but PostgreSQL at TEST_DATABASE_URL is unreachable: {error}"
                );
                eprintln!(
                    "\n!!!!!!!! NOTICE: PostgreSQL is unreachable ({error}); this PostgreSQL \
                     test did NOT run. Start PostgreSQL or set TEST_DATABASE_URL. !!!!!!!!\n"
                );
                return None;
            }
        };
        let name = format!("duet_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("a scratch database");
        let _ = admin.close().await;
        let mut url = Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(Self {
            url: DatabaseUrl::parse(url.as_str()).expect("a PostgreSQL URL"),
            scratch: Scratch::Postgres { admin_url, name },
        })
    }

    /// The database's URL, for a server under test.
    #[must_use]
    pub const fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Opens and migrates the database.
    ///
    /// # Errors
    /// [`ConnectError`] as [`connect`].
    pub async fn connect(&self) -> Result<DatabaseConnection, ConnectError> {
        connect(&self.url).await
    }

    /// Runs SQL on the database directly, behind the server's back (to damage it on purpose).
    ///
    /// # Panics
    /// When the database cannot be opened or the statement fails.
    pub async fn execute(&self, sql: &str) {
        let connection = self.connect().await.expect("the test database opens");
        connection
            .execute_unprepared(sql)
            .await
            .expect("the statement runs");
        let _ = connection.close().await;
    }

    /// A room store on this database.
    ///
    /// # Panics
    /// When the database cannot be opened.
    pub async fn repository(&self) -> SqlRoomRepository {
        SqlRoomRepository::new(self.connect().await.expect("the test database opens"))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Scratch::Postgres { admin_url, name } = &self.scratch else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived thread
        // with its own runtime removes the database before the test ends.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })?;
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop the scratch database {}", self.url);
        }
    }
}
