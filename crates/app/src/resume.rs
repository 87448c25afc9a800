//! Resume tokens: the proof that a connection is the client that used a client id before.
//!
//! Client ids are public (every member of a room sees them), so naming one proves nothing. The
//! welcome gives each client a token, HMAC-SHA256 of the room and client id under the server's
//! key ([`crate::ports::KeyStore`]); a reconnection that passes it back resumes the session,
//! and one that cannot gets a new identity. The token needs no storage and survives restarts,
//! since the key is kept in the database.

use duet_domain::{ClientId, RoomId};
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Issues and checks resume tokens under one key.
#[derive(Clone)]
pub struct ResumeTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for ResumeTokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ResumeTokens(<key hidden>)")
    }
}

impl ResumeTokens {
    /// Tokens under `key`, the server's secret.
    #[must_use]
    pub const fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// Tokens under a key made now from the operating system's random source (two version-4
    /// UUIDs: 244 random bits), for a server that keeps no key: its tokens die with it.
    #[must_use]
    pub fn ephemeral() -> Self {
        let mut key = [0; 32];
        key[..16].copy_from_slice(RoomId::generate().as_uuid().as_bytes());
        key[16..].copy_from_slice(RoomId::generate().as_uuid().as_bytes());
        Self { key }
    }

    fn mac(&self, room: RoomId, client: &ClientId) -> HmacSha256 {
        // Any key length is valid for HMAC; 32 bytes always are.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(room.as_uuid().as_bytes());
        mac.update(client.as_str().as_bytes());
        mac
    }

    /// The token of `client` in `room`: 64 hexadecimal digits.
    #[must_use]
    pub fn issue(&self, room: RoomId, client: &ClientId) -> String {
        let tag = self.mac(room, client).finalize().into_bytes();
        tag.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `token` is the token of `client` in `room` (compared in constant time).
    #[must_use]
    pub fn verify(&self, room: RoomId, client: &ClientId, token: &str) -> bool {
        let Some(tag) = from_hex(token) else {
            return false;
        };
        self.mac(room, client).verify_slice(&tag).is_ok()
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_proves_one_client_in_one_room() {
        let tokens = ResumeTokens::new([3; 32]);
        let room = RoomId::generate();
        let alice = ClientId::new("alice").expect("valid");
        let bob = ClientId::new("bob").expect("valid");
        let token = tokens.issue(room, &alice);
        assert_eq!(token.len(), 64);
        assert!(tokens.verify(room, &alice, &token));
        assert!(tokens.verify(room, &alice, &token.to_uppercase()));
        assert!(!tokens.verify(room, &bob, &token));
        assert!(!tokens.verify(RoomId::generate(), &alice, &token));
        assert!(!ResumeTokens::new([4; 32]).verify(room, &alice, &token));
        for forged in ["", "00", &"0".repeat(64), &format!("{}é", &token[..62])] {
            assert!(
                !tokens.verify(room, &alice, forged),
                "{forged} was accepted"
            );
        }
        assert_ne!(
            ResumeTokens::ephemeral().issue(room, &alice),
            ResumeTokens::ephemeral().issue(room, &alice)
        );
        assert!(!format!("{tokens:?}").contains("3, 3"));
    }
}
