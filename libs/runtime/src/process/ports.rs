//! Loopback ports for the processes' networking entries.
//!
//! A port is found free by binding it, then released before the process binds it. Two things
//! can take it in between. Outgoing connections (readiness probes, clients) get their source
//! ports from the kernel's ephemeral range; one holding the pod's port makes the pod's server
//! fail to bind, and the pod is restarted a second later. So ports come from [`RANGE`], outside
//! the ephemeral range. And another launch of this process may pick the same port before the
//! first process binds it; so every port handed out is booked for a while, and a booked port
//! is skipped.
//!
//! The test socket is bound but never listens. A launch on another thread may fork while it is
//! open; the child holds a copy of every descriptor until its `exec` closes them, which under
//! load can take milliseconds. A *listening* copy makes the pod's server fail to bind with
//! `httpd: bind: Address already in use` (the error some storms of 100 launches showed); a
//! bound one does not, since both set `SO_REUSEADDR` and only a listener conflicts then.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::state::io_err;
use crate::{ContainerSpec, RuntimeError};

/// How long a handed-out port stays booked: enough for a slow process to bind it.
const HOLD: Duration = Duration::from_secs(120);
/// Allocations tried per entry before giving up (each meeting a booked or bound port).
const ATTEMPTS: usize = 256;
/// Where pod ports are picked: below Linux's default ephemeral range (32768–60999).
const RANGE: std::ops::RangeInclusive<u16> = 20000..=29999;

/// Ports handed out recently, with when.
#[derive(Debug, Default)]
pub(super) struct PortBook {
    booked: Mutex<HashMap<u16, Instant>>,
}

impl PortBook {
    /// Books `port` at `now` unless it is booked already; bookings older than [`HOLD`] lapse.
    pub(super) fn book(&self, port: u16, now: Instant) -> bool {
        self.book_if(port, now, |_| true)
    }

    /// Books `port` if it is not booked and `free(port)` holds. The test runs only for ports
    /// not booked, under the lock: a test bind of a booked port could make that port's
    /// process fail its own bind at the same instant.
    fn book_if(&self, port: u16, now: Instant, free: impl FnOnce(u16) -> bool) -> bool {
        let mut booked = self.booked.lock().unwrap_or_else(PoisonError::into_inner);
        if booked.len() >= 1024 {
            booked.retain(|_, at| now.saturating_duration_since(*at) < HOLD);
        }
        match booked.get(&port) {
            Some(at) if now.saturating_duration_since(*at) < HOLD => false,
            _ if !free(port) => false,
            _ => {
                booked.insert(port, now);
                true
            }
        }
    }
}

/// One book for every process runtime of this process: they share the host's ports.
static BOOK: LazyLock<PortBook> = LazyLock::new(PortBook::default);

/// A free loopback port per networking entry, none handed out recently by this process.
/// Another program may still take a port before the container binds it.
pub(super) fn allocate_ports(spec: &ContainerSpec) -> Result<BTreeMap<String, u16>, RuntimeError> {
    let range = usable_range(ephemeral_range().as_ref());
    spec.ports.iter().map(|p| Ok((p.name.clone(), allocate(&BOOK, &range)?))).collect()
}

/// The host's ephemeral port range, when it can be read.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// [`RANGE`] without the ephemeral ports; empty when they cover it all.
fn usable_range(ephemeral: Option<&(u16, u16)>) -> Vec<u16> {
    RANGE.filter(|p| ephemeral.is_none_or(|(lo, hi)| p < lo || p > hi)).collect()
}

fn allocate(book: &PortBook, range: &[u16]) -> Result<u16, RuntimeError> {
    if range.is_empty() {
        return allocate_ephemeral(book);
    }
    let start = rand::random_range(0..range.len());
    // From a random point, so concurrent launchers rarely try the same ports in turn.
    for &port in range.iter().cycle().skip(start).take(ATTEMPTS.min(range.len())) {
        if book.book_if(port, Instant::now(), |p| probe(p).is_ok()) {
            return Ok(port);
        }
    }
    allocate_ephemeral(book)
}

/// Fallback when the range is used up: a port the kernel picks, not booked already.
fn allocate_ephemeral(book: &PortBook) -> Result<u16, RuntimeError> {
    // Ports met already booked stay bound until this returns, so the kernel offers others.
    let mut refused = Vec::new();
    for _ in 0..ATTEMPTS {
        let socket = probe(0).map_err(|e| io_err("allocating a port", &e))?;
        let port = socket.local_addr().map_err(|e| io_err("allocating a port", &e))?.port();
        if book.book(port, Instant::now()) {
            return Ok(port);
        }
        refused.push(socket);
    }
    Err(RuntimeError::Other(format!(
        "no free loopback port after {ATTEMPTS} tries: every one offered was just handed out"
    )))
}

/// A loopback socket bound to `port` (0: one the kernel picks) with `SO_REUSEADDR`, not
/// listening. Binding fails while anything listens on the port, which is what "free" means
/// for a server that sets `SO_REUSEADDR` too (as busybox's `httpd` and most servers do).
fn probe(port: u16) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn a_booked_port_is_refused_until_its_hold_lapses() {
        let book = PortBook::default();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        assert!(book.book(4000, t0));
        assert!(!book.book(4000, t0 + s(1)), "booked a second ago");
        assert!(book.book(4001, t0 + s(1)), "other ports are free");
        assert!(!book.book(4000, t0 + HOLD - s(1)));
        assert!(book.book(4000, t0 + HOLD), "the hold lapsed");
        assert!(!book.book(4000, t0 + HOLD + s(1)), "booked again");
    }

    #[test]
    fn lapsed_bookings_are_dropped_when_the_book_grows() {
        let book = PortBook::default();
        let t0 = Instant::now();
        for port in 0..1024 {
            assert!(book.book(port, t0));
        }
        assert!(book.book(5000, t0 + HOLD));
        let len = book.booked.lock().map(|b| b.len()).unwrap_or_default();
        assert_eq!(len, 1, "only the fresh booking is left");
    }

    #[test]
    fn a_storm_of_allocations_never_repeats_a_port() {
        // Without the book, 500 kernel-picked ports repeat one with near certainty.
        let book = PortBook::default();
        let mut seen = std::collections::HashSet::new();
        for n in 0..500 {
            let port = allocate_ephemeral(&book).expect("a free port");
            assert!(seen.insert(port), "port {port} handed out twice, at allocation {n}");
        }
        let range = usable_range(ephemeral_range().as_ref());
        let mut seen = std::collections::HashSet::new();
        for n in 0..500 {
            let port = allocate(&book, &range).expect("a free port");
            assert!(seen.insert(port), "port {port} handed out twice, at allocation {n}");
        }
    }

    #[test]
    fn pod_ports_stay_out_of_the_ephemeral_range() {
        assert_eq!(usable_range(None).len(), RANGE.len());
        assert_eq!(usable_range(Some(&(32768, 60999))).len(), RANGE.len(), "the usual range leaves it whole");
        let clipped = usable_range(Some(&(25000, 60999)));
        assert_eq!((clipped.first(), clipped.last()), (Some(&20000), Some(&24999)));
        assert!(usable_range(Some(&(1024, 65535))).is_empty(), "all ephemeral: the kernel picks");
        let book = PortBook::default();
        let range = usable_range(ephemeral_range().as_ref());
        let port = allocate(&book, &range).expect("a free port");
        assert!(range.contains(&port), "{port} from the range");
        // A port bound by someone else is passed over.
        let held = TcpListener::bind(("127.0.0.1", port)).expect("still free");
        let fresh = PortBook::default();
        assert_ne!(allocate(&fresh, &[port]).expect("another port"), port);
        drop(held);
    }

    #[test]
    fn a_copy_of_the_test_socket_left_open_does_not_keep_the_server_off_its_port() {
        let range = usable_range(ephemeral_range().as_ref());
        let port = allocate(&PortBook::default(), &range).expect("a free port");
        // What a child forked during the test holds until its `exec`.
        let inherited = probe(port).expect("the port was found free");
        // std's listener sets SO_REUSEADDR and listens, as the pods' servers do.
        let server = TcpListener::bind(("127.0.0.1", port));
        assert!(server.is_ok(), "the server could not bind {port}: {:?}", server.err());
        drop(inherited);
        assert!(probe(port).is_err(), "a port with a listener is not free");
        let other = allocate(&PortBook::default(), &range).expect("another free port");
        let everywhere = TcpListener::bind(("0.0.0.0", other)).expect("still free");
        assert!(probe(other).is_err(), "a listener on every address holds the loopback port too");
        drop(everywhere);
    }
}
