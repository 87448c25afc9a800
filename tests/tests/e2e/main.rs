//! End-to-end tests: the real server on 127.0.0.1, real HTTP and WebSocket clients, on SQLite
//! and on PostgreSQL.

mod auth;
mod faults;
mod flood;
mod history;
mod hostile;
mod http;
mod loadgen;
mod persistence;
mod plain_exact;
mod plain_ws;
mod quotas;
mod v1_ws;
mod web;
