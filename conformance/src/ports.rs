//! Picking loopback ports that are very likely free, even with many test processes racing.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener};

/// Ports are drawn below Linux's default ephemeral range (32768–60999): the kernel hands
/// ports from that range to outgoing connections, which could grab a port between our
/// check and the server's bind. Drawing at random (instead of asking the kernel for
/// port 0) keeps separate test processes from converging on the same "next free" port.
const FIRST: u16 = 15_000;
const LAST: u16 = 32_000;

/// Returns `count` distinct ports in `FIRST..LAST` that could be bound on 127.0.0.1 just now.
///
/// A port can still be taken before the server binds it; callers detect that (the server
/// exits, or another server answers) and start again with fresh ports.
pub fn free_ports(count: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(count);
    for _ in 0..10_000 {
        if ports.len() == count {
            break;
        }
        let port = random_port();
        if !ports.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "gatez-conformance: found no free port in {FIRST}..{LAST} on 127.0.0.1"
    );
    ports
}

fn random_port() -> u16 {
    // RandomState is seeded from OS randomness per instance: good enough here, no extra crate.
    let random = RandomState::new().build_hasher().finish();
    let span = u64::from(LAST - FIRST);
    FIRST + u16::try_from(random % span).expect("span fits in u16")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_in_range_and_bindable() {
        let ports = free_ports(3);
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
        for port in ports {
            assert!((FIRST..LAST).contains(&port), "{port} out of range");
            TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port should be free");
        }
    }

    #[test]
    fn random_ports_vary() {
        let first = random_port();
        assert!((0..50).any(|_| random_port() != first));
    }
}
