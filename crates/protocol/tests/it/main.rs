//! The `duet.v1` messages as a client and the server see them: exact bytes, round trips both
//! ways, batched frames, and what a newer server may send.

mod frames;
mod messages;
