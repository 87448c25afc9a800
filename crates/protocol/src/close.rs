//! The WebSocket close codes a Duet server closes connections with, named for what they
//! mean in Duet (docs/PROTOCOL.md, "Close codes"). The 1xxx codes are RFC 6455's; the 4xxx
//! codes are Duet's own. A client that falls too far behind, or stops answering pings, is
//! disconnected without a close frame, so it has no code.

/// 1001, going away: the server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// 1003, unsupported data: the client sent a binary frame.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1007, invalid payload: plain mode only, a buffer that cannot be stored (a NUL character).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008, policy violation: twenty refused messages in a row, or sending faster than allowed
/// for too long.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009, message too big: a message over the server's size limit; nothing was stored.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011, internal error: plain mode only, an edit that could not be saved; reconnect and
/// resend.
pub const INTERNAL_ERROR: u16 = 1011;
/// 1013, try again later: the room stopped under the connection, or must load again after a
/// storage failure; reconnect and resume.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// 4404: the room was deleted.
pub const ROOM_DELETED: u16 = 4404;
/// 4409: replaced by a newer connection with the same client id.
pub const REPLACED: u16 = 4409;
