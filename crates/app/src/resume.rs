//! Resume tokens: the proof that a connection is the client that used a client id before.
//!
//! Client ids are public (every member of a room sees them), so naming one proves nothing. The
//! welcome gives each client a token, HMAC-SHA256 of the room and client id under the server's
//! key ([`crate::ports::KeyStore`]); a reconnection that passes it back resumes the session,
//! and one that cannot gets a new identity. With authentication on, the token also covers the
//! user (the signed token's subject) the client id was given to, so a token that leaks to
//! another user proves nothing for them. The token needs no storage and survives restarts,
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

    fn mac(&self, room: RoomId, client: &ClientId, subject: Option<&str>) -> HmacSha256 {
        // Any key length is valid for HMAC; 32 bytes always are.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(room.as_uuid().as_bytes());
        mac.update(client.as_str().as_bytes());
        if let Some(subject) = subject {
            // After a byte no client id holds, so no (client, subject) pair reads as another.
            mac.update(&[0]);
            mac.update(subject.as_bytes());
        }
        mac
    }

    /// The token of `client` in `room`, given to the user `subject` when authentication is
    /// on: 64 hexadecimal digits.
    #[must_use]
    pub fn issue(&self, room: RoomId, client: &ClientId, subject: Option<&str>) -> String {
        let tag = self.mac(room, client, subject).finalize().into_bytes();
        tag.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Whether `token` is the token of `client` in `room` given to `subject` (compared in
    /// constant time).
    #[must_use]
    pub fn verify(
        &self,
        room: RoomId,
        client: &ClientId,
        subject: Option<&str>,
        token: &str,
    ) -> bool {
        let Some(tag) = from_hex(token) else {
            return false;
        };
        self.mac(room, client, subject).verify_slice(&tag).is_ok()
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
        let token = tokens.issue(room, &alice, None);
        assert_eq!(token.len(), 64);
        assert!(tokens.verify(room, &alice, None, &token));
        assert!(tokens.verify(room, &alice, None, &token.to_uppercase()));
        assert!(!tokens.verify(room, &bob, None, &token));
        assert!(!tokens.verify(RoomId::generate(), &alice, None, &token));
        assert!(!ResumeTokens::new([4; 32]).verify(room, &alice, None, &token));
        for forged in ["", "00", &"0".repeat(64), &format!("{}é", &token[..62])] {
            assert!(
                !tokens.verify(room, &alice, None, forged),
                "{forged} was accepted"
            );
        }
        assert_ne!(
            ResumeTokens::ephemeral().issue(room, &alice, None),
            ResumeTokens::ephemeral().issue(room, &alice, None)
        );
        assert!(!format!("{tokens:?}").contains("3, 3"));
    }

    #[test]
    fn a_token_given_to_a_user_proves_nothing_for_another() {
        let tokens = ResumeTokens::new([3; 32]);
        let room = RoomId::generate();
        let alice = ClientId::new("alice").expect("valid");
        let token = tokens.issue(room, &alice, Some("user-1"));
        assert!(tokens.verify(room, &alice, Some("user-1"), &token));
        assert!(!tokens.verify(room, &alice, Some("user-2"), &token));
        assert!(!tokens.verify(room, &alice, None, &token));
        assert!(!tokens.verify(room, &alice, Some(""), &tokens.issue(room, &alice, None)));
    }
}
