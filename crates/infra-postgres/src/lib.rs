//! Duet's storage adapter: the [`RoomRepository`](duet_app::ports::RoomRepository) and
//! [`HealthCheck`](duet_app::ports::HealthCheck) ports on sea-orm, over PostgreSQL or an SQLite
//! file (the zero-setup default).
//!
//! [`connect`] opens the database named by a [`DatabaseUrl`] and brings its schema up to date;
//! [`SqlRoomRepository`] keeps rooms in it. Database errors never leave this crate: they become
//! the ports' error variants, with the original kept as the cause for the logs.

mod connection;
mod operation_entity;
mod room_entity;
mod room_repository;
#[cfg(feature = "test-support")]
pub mod testing;
mod write_probe_entity;

pub use connection::{ConnectError, DatabaseUrl, DatabaseUrlError, connect};
pub use room_repository::SqlRoomRepository;
