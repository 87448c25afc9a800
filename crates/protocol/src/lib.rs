//! The `duet.v1` wire protocol, defined once for the server and every client: the messages
//! each side sends ([`ClientMessage`], [`ServerMessage`]), the `error` codes ([`ErrorCode`]),
//! the WebSocket close codes ([`close`]) and the batched frames of `batch=1` clients
//! ([`batch`]). docs/PROTOCOL.md describes the protocol for people; this crate is its
//! definition for programs.
//!
//! Every frame is a JSON text frame. The server encodes what it sends with
//! [`ServerMessage::encode`], borrowing from its own state; a client reads a frame with
//! [`batch::read_frame`] (or [`ServerMessage::decode`] when it did not ask for batches) into
//! owned `ServerMessage<'static>` values, and writes with [`ClientMessage::encode`].
//!
//! This crate knows serde and JSON only: no async runtime, no WebSocket library. Transports
//! wrap its strings in their own frame types.

pub mod batch;
pub mod close;
mod error_code;
mod message;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

#[cfg(test)]
mod fuzz;

pub use error_code::ErrorCode;
pub use message::{ClientMessage, Participant, ServerMessage, WireOperation};

/// The WebSocket subprotocol a client asks for to speak `duet.v1`
/// (`Sec-WebSocket-Protocol: duet.v1`); a client that asks for none speaks plain mode.
pub const SUBPROTOCOL: &str = "duet.v1";
