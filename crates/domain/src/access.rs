//! Who may do what in a room: the roles a signed token grants (docs/PROTOCOL.md,
//! "Authentication"). How a grant is proved (a JWT, on the HTTP edge) is not this module's
//! business; what it allows is.

use std::fmt;
use std::str::FromStr;

use crate::RoomId;

/// What a member may do in a room, each role allowing everything the one before does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the room (its code, every edit, presence), sends presence, asks for completions.
    Viewer,
    /// Also edits the code and changes the language.
    Editor,
    /// Also shares the room (mints tokens for it) and deletes it.
    Owner,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Editor, Self::Owner];

    /// The name tokens and the API use.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Owner => "owner",
        }
    }

    /// Whether this role may change the room's code or language.
    #[must_use]
    pub fn may_edit(self) -> bool {
        self >= Self::Editor
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A role name that is not `viewer`, `editor` or `owner`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be viewer, editor or owner, not {0:?}")]
pub struct RoleError(String);

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| RoleError(name.chars().take(32).collect()))
    }
}

/// Which rooms a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rooms {
    One(RoomId),
    /// Every room (a token's `"room": "*"`).
    Every,
}

impl Rooms {
    /// Reads a token's `room` claim: a room id, or `*`.
    ///
    /// # Errors
    /// [`crate::RoomIdError`] when it is neither.
    pub fn parse(claim: &str) -> Result<Self, crate::RoomIdError> {
        if claim == "*" {
            Ok(Self::Every)
        } else {
            RoomId::parse(claim).map(Self::One)
        }
    }

    /// Whether `room` is among them.
    #[must_use]
    pub fn contain(self, room: RoomId) -> bool {
        match self {
            Self::One(id) => id == room,
            Self::Every => true,
        }
    }
}

impl fmt::Display for Rooms {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(id) => id.fmt(formatter),
            Self::Every => formatter.write_str("*"),
        }
    }
}

/// What a proved token says about its bearer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The user's stable id in the team's own identity system.
    pub subject: String,
    /// The name to show others, when the token gives one.
    pub name: Option<String>,
    pub rooms: Rooms,
    pub role: Role,
    /// When the grant ends, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Grant {
    /// The role this grant gives in `room`, if any.
    #[must_use]
    pub fn role_in(&self, room: RoomId) -> Option<Role> {
        self.rooms.contain(room).then_some(self.role)
    }

    /// Whether this grant allows at least `role` in `room`.
    #[must_use]
    pub fn allows(&self, room: RoomId, role: Role) -> bool {
        self.role_in(room).is_some_and(|held| held >= role)
    }

    /// Whether this grant may create rooms: an owner of every room.
    #[must_use]
    pub fn may_create_rooms(&self) -> bool {
        self.rooms == Rooms::Every && self.role == Role::Owner
    }

    /// The grant an owner may hand on for `room` with `role`, until `expires_at` at the
    /// latest: never more than this grant holds (that room only, a role below owner, and no
    /// longer than this grant lasts).
    ///
    /// # Errors
    /// [`ShareError`] when this grant does not own `room`, or `role` is owner.
    pub fn share(
        &self,
        room: RoomId,
        role: Role,
        subject: String,
        name: Option<String>,
        expires_at: u64,
    ) -> Result<Self, ShareError> {
        if !self.allows(room, Role::Owner) {
            return Err(ShareError::NotOwner);
        }
        if role >= Role::Owner {
            return Err(ShareError::OwnerRole);
        }
        Ok(Self {
            subject,
            name,
            rooms: Rooms::One(room),
            role,
            expires_at: expires_at.min(self.expires_at),
        })
    }
}

/// Why a grant cannot be handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("only an owner of the room may share it")]
    NotOwner,
    #[error("a shared token is for a viewer or an editor, never an owner")]
    OwnerRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(rooms: Rooms, role: Role) -> Grant {
        Grant {
            subject: "ada".into(),
            name: None,
            rooms,
            role,
            expires_at: 1_000,
        }
    }

    #[test]
    fn roles_read_and_order() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!("Owner".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Owner);
        assert!(!Role::Viewer.may_edit());
        assert!(Role::Editor.may_edit() && Role::Owner.may_edit());
    }

    #[test]
    fn a_grant_holds_in_its_rooms_only() {
        let room = RoomId::generate();
        let other = RoomId::generate();
        let editor = grant(Rooms::One(room), Role::Editor);
        assert!(editor.allows(room, Role::Viewer));
        assert!(editor.allows(room, Role::Editor));
        assert!(!editor.allows(room, Role::Owner));
        assert!(!editor.allows(other, Role::Viewer));
        assert!(!editor.may_create_rooms());
        let everywhere = grant(Rooms::Every, Role::Owner);
        assert!(everywhere.allows(other, Role::Owner));
        assert!(everywhere.may_create_rooms());
        assert!(!grant(Rooms::Every, Role::Editor).may_create_rooms());
        assert_eq!(Rooms::parse("*"), Ok(Rooms::Every));
        assert_eq!(Rooms::parse(&room.to_string()), Ok(Rooms::One(room)));
        assert!(Rooms::parse("room-1").is_err());
    }

    #[test]
    fn a_shared_grant_is_never_above_its_maker() {
        let room = RoomId::generate();
        let owner = grant(Rooms::Every, Role::Owner);
        let shared = owner
            .share(room, Role::Editor, "link".into(), None, 5_000)
            .expect("an owner shares");
        assert_eq!(shared.rooms, Rooms::One(room));
        assert_eq!(shared.expires_at, 1_000, "no longer than the owner's own");
        let earlier = owner
            .share(room, Role::Viewer, "link".into(), None, 500)
            .expect("an owner shares");
        assert_eq!(earlier.expires_at, 500);
        assert_eq!(
            owner.share(room, Role::Owner, "link".into(), None, 500),
            Err(ShareError::OwnerRole)
        );
        let editor = grant(Rooms::One(room), Role::Editor);
        assert_eq!(
            editor.share(room, Role::Viewer, "link".into(), None, 500),
            Err(ShareError::NotOwner)
        );
        let owner_elsewhere = grant(Rooms::One(RoomId::generate()), Role::Owner);
        assert_eq!(
            owner_elsewhere.share(room, Role::Viewer, "link".into(), None, 500),
            Err(ShareError::NotOwner)
        );
    }
}
