//! Scratch databases for tests (feature `test-support`): a fresh SQLite file or a fresh
//! PostgreSQL database per test, migrated, and removed when dropped; and the faults that tests
//! inject into them (an SQLite file made unwritable, PostgreSQL connections terminated).

use std::path::{Path, PathBuf};
use std::process::Command;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use url::Url;

use crate::{ConnectError, DatabaseUrl, SqlRoomRepository, connect};

/// The PostgreSQL server tests use when `TEST_DATABASE_URL` is unset.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

enum Scratch {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// A small tmpfs mounted on the directory, so that the disk can be filled.
    SqliteOnTmpfs(tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
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

    /// A new SQLite file on a tmpfs of its own of `bytes` bytes, unmounted when dropped, so
    /// that a test can fill the disk ([`Self::fill_disk`]).
    ///
    /// Needs root (to mount); without, `None` after a loud notice (a panic under `CI=true`).
    ///
    /// # Panics
    /// When no temporary directory can be made, or as above under CI.
    #[must_use]
    pub fn sqlite_on_small_disk(bytes: u64) -> Option<Self> {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(directory.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => {}
            Ok(output) => {
                fault_unavailable(&format!(
                    "cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
                return None;
            }
            Err(error) => {
                fault_unavailable(&format!("cannot run mount: {error}"));
                return None;
            }
        }
        let path = directory.path().join("duet.db");
        let url = DatabaseUrl::parse(&format!("sqlite://{}?mode=rwc", path.display()))
            .expect("a valid SQLite URL");
        Some(Self {
            url,
            scratch: Scratch::SqliteOnTmpfs(directory),
        })
    }

    /// Fills the disk of a database made by [`Self::sqlite_on_small_disk`] with a file, removed
    /// when the guard is dropped.
    ///
    /// # Panics
    /// On another kind of database, or when the filler cannot be written at all.
    pub fn fill_disk(&self) -> DiskFiller {
        use std::io::Write;
        let Scratch::SqliteOnTmpfs(directory) = &self.scratch else {
            panic!("fill_disk needs a database made by sqlite_on_small_disk");
        };
        let path = directory.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("a filler file");
        let chunk = vec![0_u8; 4096];
        // Written until the disk refuses more: then every byte of it is taken.
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        DiskFiller { path }
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

    /// How many rooms the database holds, read behind the server's back (to check that a
    /// refused request stored nothing).
    ///
    /// # Panics
    /// When the database cannot be opened or read.
    pub async fn room_count(&self) -> u64 {
        let connection = self.connect().await.expect("the test database opens");
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(
                connection.get_database_backend(),
                "SELECT COUNT(*) AS count FROM rooms",
            ))
            .await
            .expect("the rooms are counted")
            .expect("a count");
        let count: i64 = row.try_get("", "count").expect("a whole number");
        let _ = connection.close().await;
        u64::try_from(count).expect("not negative")
    }

    /// A room store on this database.
    ///
    /// # Panics
    /// When the database cannot be opened.
    pub async fn repository(&self) -> SqlRoomRepository {
        SqlRoomRepository::new(
            self.connect().await.expect("the test database opens"),
            &self.url,
        )
    }

    /// The SQLite file, for a database that is one.
    #[must_use]
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match &self.scratch {
            Scratch::Sqlite(directory) | Scratch::SqliteOnTmpfs(directory) => {
                Some(directory.path().join("duet.db"))
            }
            Scratch::Postgres { .. } => None,
        }
    }

    /// Makes the SQLite file, its write-ahead log and their directory immutable (`chattr +i`),
    /// so that every write fails as on a disk gone read-only, until the guard is dropped.
    ///
    /// Needs root and a file system with attributes (ext4, xfs, btrfs). Where that is missing
    /// this returns `None` after a loud notice, so the test can end early; under `CI=true` it
    /// panics instead, so CI never passes without having injected the fault.
    ///
    /// # Panics
    /// When called on PostgreSQL, or as above under CI.
    #[must_use]
    pub fn make_unwritable(&self) -> Option<Unwritable> {
        let file = self.sqlite_file().expect("an SQLite database");
        let directory = file.parent().expect("a directory").to_owned();
        let mut paths = vec![directory];
        for suffix in ["", "-wal"] {
            let path = PathBuf::from(format!("{}{suffix}", file.display()));
            if path.exists() {
                paths.push(path);
            }
        }
        let mut guard = Unwritable { paths: Vec::new() };
        for path in paths {
            if let Err(error) = chattr("+i", &path) {
                fault_unavailable(&format!(
                    "cannot make {} immutable: {error}",
                    path.display()
                ));
                return None;
            }
            guard.paths.push(path);
        }
        Some(guard)
    }

    /// Terminates every server process connected to this PostgreSQL database (as an
    /// administrator's `pg_terminate_backend` or a crashed backend would) and returns how many
    /// there were. The rest of the cluster is left alone.
    ///
    /// # Panics
    /// When called on SQLite or when the server cannot be reached.
    pub async fn terminate_connections(&self) -> usize {
        let Scratch::Postgres { admin_url, name } = &self.scratch else {
            panic!("terminate_connections needs a PostgreSQL database");
        };
        let admin = Database::connect(admin_url.as_str())
            .await
            .expect("the PostgreSQL server answers");
        let terminated = admin
            .query_all_raw(sea_orm::Statement::from_string(
                admin.get_database_backend(),
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                ),
            ))
            .await
            .expect("backends terminated")
            .len();
        let _ = admin.close().await;
        terminated
    }
}

/// A file that fills a small disk; dropping it frees the space.
#[must_use = "the disk is freed when this is dropped"]
pub struct DiskFiller {
    path: PathBuf,
}

impl DiskFiller {
    /// Frees the space.
    pub fn heal(self) {}
}

impl Drop for DiskFiller {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            eprintln!("warning: cannot remove {}: {error}", self.path.display());
        }
    }
}

/// Paths made immutable by [`TestDatabase::make_unwritable`]; dropping it makes them writable
/// again.
#[must_use = "the files become writable again when this is dropped"]
pub struct Unwritable {
    paths: Vec<PathBuf>,
}

impl Unwritable {
    /// Makes the files writable again.
    pub fn heal(self) {}
}

impl Drop for Unwritable {
    fn drop(&mut self) {
        for path in self.paths.iter().rev() {
            if let Err(error) = chattr("-i", path) {
                eprintln!(
                    "warning: cannot make {} mutable again: {error}",
                    path.display()
                );
            }
        }
    }
}

fn chattr(change: &str, path: &Path) -> Result<(), String> {
    let output = Command::new("chattr")
        .arg(change)
        .arg(path)
        .output()
        .map_err(|error| format!("chattr: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// Reports that a fault cannot be injected here: loudly, and as a failure under `CI=true`.
///
/// # Panics
/// Under CI.
pub fn fault_unavailable(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but a storage fault cannot be injected: {why}"
    );
    eprintln!(
        "\n!!!!!!!! NOTICE: {why}; this fault-injection test did NOT run. Run the tests as \
         root on ext4, xfs or btrfs. !!!!!!!!\n"
    );
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Scratch::SqliteOnTmpfs(directory) = &self.scratch {
            // Lazily, so that a connection still closing does not keep it mounted.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(directory.path())
                .status();
        }
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
