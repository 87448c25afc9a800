//! The quotas each client address is held to: how many connections it may hold open.
//!
//! A client's address is its TCP peer address, with an IPv4-mapped IPv6 address counted as the
//! IPv4 address it maps. Headers such as `X-Forwarded-For` are not trusted: any client can
//! send them. Behind a reverse proxy every client therefore has the proxy's address, which is
//! why these quotas are per address and generous: they keep one machine from taking the whole
//! server, not one person from a fair share.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The address a client is counted under.
pub(crate) fn client_address(peer: IpAddr) -> IpAddr {
    peer.to_canonical()
}

/// Locks `mutex` even when a thread panicked while holding it: the maps behind these locks are
/// changed in single steps that leave them consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many connections each address holds open. An address is in the map only while it holds
/// at least one, so the map is never larger than the number of open connections.
pub(crate) struct ConnectionsPerAddress {
    limit: usize,
    open: Mutex<HashMap<IpAddr, Held>>,
}

#[derive(Debug)]
struct Held {
    connections: usize,
    /// Whether the last connection from this address was refused: a flood past the quota logs
    /// one warning, not one per connection.
    refusing: bool,
}

/// A connection refused for its address's quota.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooManyFromAddress {
    /// Whether this is the first refusal since the address last had a connection accepted.
    pub(crate) first_of_flood: bool,
}

impl ConnectionsPerAddress {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            open: Mutex::default(),
        })
    }

    /// A place for one more connection from `address`, held until the place is dropped; or a
    /// refusal when the address holds its whole quota already.
    pub(crate) fn hold(
        self: &Arc<Self>,
        address: IpAddr,
    ) -> Result<AddressPlace, TooManyFromAddress> {
        let mut open = lock(&self.open);
        let held = open.entry(address).or_insert(Held {
            connections: 0,
            refusing: false,
        });
        if held.connections >= self.limit {
            let first_of_flood = !held.refusing;
            held.refusing = true;
            return Err(TooManyFromAddress { first_of_flood });
        }
        held.connections += 1;
        held.refusing = false;
        Ok(AddressPlace {
            counts: self.clone(),
            address,
        })
    }

    fn release(&self, address: IpAddr) {
        let mut open = lock(&self.open);
        if let Entry::Occupied(mut held) = open.entry(address) {
            held.get_mut().connections = held.get().connections.saturating_sub(1);
            if held.get().connections == 0 {
                held.remove();
            }
        }
    }

    #[cfg(test)]
    fn open_from(&self, address: IpAddr) -> Option<usize> {
        lock(&self.open).get(&address).map(|held| held.connections)
    }
}

/// One connection's place in its address's quota; dropping it, however the connection ended,
/// gives the place back.
pub(crate) struct AddressPlace {
    counts: Arc<ConnectionsPerAddress>,
    address: IpAddr,
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        self.counts.release(self.address);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address() {
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(client_address(mapped), HOME);
        assert_eq!(client_address(HOME), HOME);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(client_address(v6), v6);
    }

    #[test]
    fn an_address_holds_up_to_its_quota_and_gets_each_place_back() {
        let counts = ConnectionsPerAddress::new(2);
        let first = counts.hold(HOME).expect("within the quota");
        let second = counts.hold(HOME).expect("within the quota");
        assert_eq!(
            counts.hold(HOME).err(),
            Some(TooManyFromAddress {
                first_of_flood: true
            })
        );
        assert_eq!(
            counts.hold(HOME).err(),
            Some(TooManyFromAddress {
                first_of_flood: false
            }),
            "one warning per flood"
        );
        // Other addresses have quotas of their own.
        let other = counts.hold(OTHER).expect("another address");
        drop(first);
        assert_eq!(counts.open_from(HOME), Some(1));
        let third = counts.hold(HOME).expect("a place was given back");
        assert_eq!(
            counts.hold(HOME).err(),
            Some(TooManyFromAddress {
                first_of_flood: true
            }),
            "a new flood after an accepted connection warns again"
        );
        drop((second, third, other));
        assert_eq!(counts.open_from(HOME), None, "no entry for an idle address");
        assert_eq!(counts.open_from(OTHER), None);
        assert!(lock(&counts.open).is_empty());
    }

    #[test]
    fn a_place_is_given_back_when_its_task_ends_in_a_panic() {
        let counts = ConnectionsPerAddress::new(1);
        let place = counts.hold(HOME).expect("within the quota");
        let task = std::thread::spawn(move || {
            let _place = place;
            panic!("the connection's task failed");
        });
        assert!(task.join().is_err());
        assert_eq!(counts.open_from(HOME), None);
        assert!(counts.hold(HOME).is_ok());
    }
}
