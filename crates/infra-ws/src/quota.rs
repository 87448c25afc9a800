//! The quotas each client address is held to: how many connections it may hold open, and how
//! often it may create a room.
//!
//! A client's address is its TCP peer address, with an IPv4-mapped IPv6 address counted as the
//! IPv4 address it maps, and an IPv6 address counted as its /64 network (one host is commonly
//! given a whole /64, and could otherwise take a new address for every connection). Headers such as `X-Forwarded-For` are not trusted: any client can
//! send them. Behind a reverse proxy every client therefore has the proxy's address, which is
//! why these quotas are per address and generous: they keep one machine from taking the whole
//! server, not one person from a fair share.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::auth::Caller;
use crate::error::ApiError;

/// The address a client is counted under.
pub(crate) fn client_address(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
    }
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

/// How often each address may do something: a burst of `per_minute` at once, then one every
/// minute / `per_minute`, by the generic cell rate algorithm (GCRA, a token bucket kept as
/// one instant per address).
///
/// Written here rather than taken from `governor`, the well-kept crate for this: its keyed
/// limiter brings `dashmap`, `quanta`, `parking_lot` and more for what is one instant per
/// address behind a lock taken once per room created, and its clock is not tokio's.
pub(crate) struct RatePerAddress {
    per_minute: u32,
    /// The time one event costs: a minute / `per_minute`.
    interval: Duration,
    /// How far ahead of now an address's spending may run: `per_minute - 1` intervals, which
    /// lets a full burst through at once.
    burst_tolerance: Duration,
    schedules: Mutex<Schedules>,
}

struct Schedules {
    /// For each address, the instant until which its quota is spent. An instant in the past
    /// means a full quota, the same as no entry.
    spent_until: HashMap<IpAddr, Instant>,
    /// The size at which the map is next pruned of full quotas.
    prune_at: usize,
}

/// The map is not pruned below this many entries: pruning a small map costs more than it saves.
const MIN_PRUNE_AT: usize = 1024;

impl RatePerAddress {
    /// At most `per_minute` a minute from each address (taken as 1 if 0).
    pub(crate) fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let interval = Duration::from_secs(60) / per_minute;
        Self {
            per_minute,
            interval,
            burst_tolerance: interval.saturating_mul(per_minute - 1),
            schedules: Mutex::new(Schedules {
                spent_until: HashMap::new(),
                prune_at: MIN_PRUNE_AT,
            }),
        }
    }

    /// Takes one event of `address`'s quota at `now`; when none is left, how long until one
    /// is, with nothing taken.
    ///
    /// An entry lives only until its address's quota is full again, at most a minute after
    /// the address last took from it, so the map holds at most the addresses that took from
    /// their quota in the last minute. It is pruned each time it has doubled since the last
    /// pruning, which keeps the cost of pruning constant per insertion.
    pub(crate) fn take(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut schedules = lock(&self.schedules);
        let Schedules {
            spent_until,
            prune_at,
        } = &mut *schedules;
        if !spent_until.contains_key(&address) && spent_until.len() >= *prune_at {
            spent_until.retain(|_, until| *until > now);
            *prune_at = spent_until.len().saturating_mul(2).max(MIN_PRUNE_AT);
        }
        let until = spent_until.entry(address).or_insert(now);
        let ahead = until.saturating_duration_since(now);
        if ahead > self.burst_tolerance {
            return Err(ahead - self.burst_tolerance);
        }
        *until = now.max(*until) + self.interval;
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.schedules).spent_until.len()
    }
}

/// In front of the routes that create rooms: a request from an address that has used up its
/// quota is answered 429 `rate_limited` with `Retry-After`, and creates nothing. Every request
/// of a caller that may create rooms counts, including one refused for its body, so a client
/// cannot probe for free; a caller that may not (a viewer's token) uses up nothing, so that it
/// cannot spend its address's quota for others behind the same address.
///
/// A request without a peer address did not come through [`crate::serve`] but was handed to
/// the router in process (as tests do); there is no client to hold to a quota, so it passes.
pub(crate) async fn limit_room_creation(
    State(rate): State<Arc<RatePerAddress>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        return next.run(request).await;
    };
    let may_create = request
        .extensions()
        .get::<Caller>()
        .is_none_or(|caller| caller.require_room_creation().is_ok());
    if !may_create {
        return next.run(request).await;
    }
    match rate.take(client_address(peer.ip()), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = whole_seconds(wait);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this address may create {} rooms a minute and has used them up; the \
                     next one will be accepted in {seconds} s",
                    rate.per_minute
                ),
            )
            .retry_after(seconds)
            .into_response()
        }
    }
}

/// `wait` in whole seconds, rounded up, and at least 1: what `Retry-After` can say.
fn whole_seconds(wait: Duration) -> u64 {
    let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    rounded_up.max(1)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(20)), 20);
        assert_eq!(whole_seconds(Duration::from_millis(20_001)), 21);
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_address_and_an_ipv6_one_its_network() {
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(client_address(mapped), HOME);
        assert_eq!(client_address(HOME), HOME);
        // Every address of one /64 counts as one.
        let network = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, 0));
        for host in [1, 0xffff, 0xdead] {
            let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 7, host, 3, 2, 1));
            assert_eq!(client_address(v6), network);
        }
        let next = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 8, 0, 0, 0, 1));
        assert_ne!(client_address(next), network);
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

    #[test]
    fn a_burst_of_the_whole_quota_then_one_per_interval() {
        let rate = RatePerAddress::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(rate.take(HOME, start), Ok(()));
        }
        // Spent: the next one is a third of a minute away, and asking does not push it back.
        assert_eq!(rate.take(HOME, start), Err(Duration::from_secs(20)));
        let later = start + Duration::from_secs(5);
        assert_eq!(rate.take(HOME, later), Err(Duration::from_secs(15)));
        // Another address is not held to this one's spending.
        assert_eq!(rate.take(OTHER, later), Ok(()));
        // Exactly when it said, one more, and only one.
        let refilled = start + Duration::from_secs(20);
        assert!(rate.take(HOME, refilled - Duration::from_nanos(1)).is_err());
        assert_eq!(rate.take(HOME, refilled), Ok(()));
        assert_eq!(rate.take(HOME, refilled), Err(Duration::from_secs(20)));
        // A minute after the last, the whole burst again, and no more.
        let full = refilled + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(rate.take(HOME, full), Ok(()));
        }
        assert!(rate.take(HOME, full).is_err());
    }

    #[test]
    fn one_a_minute_means_one_a_minute() {
        let rate = RatePerAddress::per_minute(1);
        let start = Instant::now();
        assert_eq!(rate.take(HOME, start), Ok(()));
        assert_eq!(rate.take(HOME, start), Err(Duration::from_secs(60)));
        assert_eq!(
            rate.take(HOME, start + Duration::from_secs(59)),
            Err(Duration::from_secs(1))
        );
        assert_eq!(rate.take(HOME, start + Duration::from_secs(60)), Ok(()));
    }

    #[test]
    fn full_quotas_are_pruned_as_the_map_grows() {
        let rate = RatePerAddress::per_minute(2);
        let start = Instant::now();
        let address = |index: u32| IpAddr::V4(Ipv4Addr::from(index));
        let many = u32::try_from(MIN_PRUNE_AT).expect("small");
        for index in 0..many {
            assert_eq!(rate.take(address(index), start), Ok(()));
        }
        assert_eq!(rate.tracked(), MIN_PRUNE_AT);
        // A minute on, all of them are full again; the next new address prunes them.
        let later = start + Duration::from_secs(60);
        assert_eq!(rate.take(address(many), later), Ok(()));
        assert_eq!(rate.tracked(), 1);
        // Addresses still spending are kept, with what they spent.
        for index in 0..many {
            assert_eq!(rate.take(address(index), later), Ok(()));
            assert_eq!(rate.take(address(index), later), Ok(()));
        }
        let soon = later + Duration::from_secs(1);
        assert_eq!(rate.take(address(many + 1), soon), Ok(()));
        assert_eq!(rate.tracked(), MIN_PRUNE_AT + 2);
        for index in 0..many {
            assert!(rate.take(address(index), soon).is_err(), "{index}");
        }
    }
}
