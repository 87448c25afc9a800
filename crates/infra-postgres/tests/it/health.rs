//! Readiness checks and what a bad database URL does.

use duet_app::ports::HealthCheck;
use duet_infra_postgres::testing::TestDatabase;
use duet_infra_postgres::{ConnectError, DatabaseUrl, SqlRoomRepository, connect};

#[tokio::test]
async fn a_reachable_database_is_healthy() {
    let database = TestDatabase::sqlite();
    assert!(database.repository().await.check().await.is_ok());
}

#[tokio::test]
async fn a_closed_connection_is_unhealthy() {
    let database = TestDatabase::sqlite();
    let connection = database.connect().await.expect("opens");
    let repository = SqlRoomRepository::new(connection.clone(), database.url());
    connection.close_by_ref().await.expect("closes");
    assert!(repository.check().await.is_err());
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error_without_the_password() {
    // Port 1 on loopback refuses connections at once.
    let url = DatabaseUrl::parse("postgres://duet:s3cret@127.0.0.1:1/duet").expect("valid");
    let error = connect(&url).await.expect_err("nothing listens there");
    assert!(matches!(error, ConnectError::Connect { .. }));
    let message = error.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn migrations_can_run_twice() {
    let database = TestDatabase::sqlite();
    database.connect().await.expect("first start");
    database.connect().await.expect("second start");
}
