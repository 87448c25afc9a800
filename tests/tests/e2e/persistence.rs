//! What survives a restart of the server.

use duet_tests::{Backend, TestServer, on_both_databases};
use serde_json::json;

async fn the_code_survives_a_restart(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let room = server.create_room(json!({"language": "go"})).await;
    let mut client = server.plain_client(&room).await;
    client.send_text("package main\n").await;
    assert_eq!(client.next_text().await, "package main\n");
    server.stop().await;

    let restarted = TestServer::on(&database).await;
    let stored = restarted.room(&room).await;
    assert_eq!(stored["code"], "package main\n");
    assert_eq!(stored["language"], "go");
    assert_eq!(stored["revision"], 1);
    let mut returning = restarted.plain_client(&room).await;
    assert_eq!(returning.next_text().await, "package main\n");
    restarted.stop().await;
}

on_both_databases!(the_code_survives_a_restart);
