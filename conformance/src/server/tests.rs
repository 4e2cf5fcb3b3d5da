//! The lifecycle's failure paths, driven by a real redis-server with one thing broken.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::Server;
use crate::clickhouse::ClickHouseKind;
use crate::docker::ContainerSpec;
use crate::etcd::EtcdKind;
use crate::kind::{Endpoint, Kind, Probed};
use crate::redis::RedisKind;

/// Another server answers on our port (its identity never matches).
const IMPOSTOR: u8 = 0;
/// The server exits at once (a bad flag), as when its port is taken.
const EXITS: u8 = 1;
/// The server runs but the probe never succeeds.
const NEVER_READY: u8 = 2;
/// The binary is not installed.
const MISSING: u8 = 3;

/// Redis with the breakage `MODE`.
struct BrokenRedis<const MODE: u8>;

impl<const MODE: u8> Kind for BrokenRedis<MODE> {
    const BINARY: &'static str = if MODE == MISSING {
        "gatez-no-such-server"
    } else {
        RedisKind::BINARY
    };
    const PACKAGES: &'static str = if MODE == MISSING {
        "gatez-no-such-package"
    } else {
        RedisKind::PACKAGES
    };
    const PORTS: usize = RedisKind::PORTS;
    const READY_TIMEOUT: Duration = if MODE == NEVER_READY {
        Duration::from_millis(300)
    } else {
        RedisKind::READY_TIMEOUT
    };

    fn process_args(dir: &Path, ports: &[u16], instance: &str) -> io::Result<Vec<String>> {
        let mut args = RedisKind::process_args(dir, ports, instance)?;
        if MODE == EXITS {
            args.extend(["--no-such-directive".to_owned(), "x".to_owned()]);
        }
        Ok(args)
    }

    fn container(instance: &str) -> ContainerSpec {
        RedisKind::container(instance)
    }

    async fn probe(endpoint: &Endpoint, http: &reqwest::Client) -> Result<Probed, String> {
        if MODE == NEVER_READY {
            return Err("broken on purpose".to_owned());
        }
        RedisKind::probe(endpoint, http).await
    }

    fn identity(pid: u32, instance: &str) -> String {
        if MODE == IMPOSTOR {
            "someone else".to_owned()
        } else {
            RedisKind::identity(pid, instance)
        }
    }
}

#[tokio::test]
#[should_panic(expected = "attempt 5/5): another server answers on our port")]
async fn a_foreign_server_on_our_port_is_retried_then_reported() {
    Server::<BrokenRedis<IMPOSTOR>>::start().await;
}

#[tokio::test]
#[should_panic(expected = "Bad directive or wrong number of arguments")]
async fn an_early_exit_is_retried_then_reported_with_the_log() {
    Server::<BrokenRedis<EXITS>>::start().await;
}

#[tokio::test]
#[should_panic(
    expected = "failed to start (attempt 1/5): not ready after 300ms; last probe: broken on purpose"
)]
async fn a_server_that_never_gets_ready_times_out_without_retry() {
    Server::<BrokenRedis<NEVER_READY>>::start().await;
}

#[tokio::test]
#[should_panic(
    expected = "gatez-no-such-server not found: install it with: apt-get install -y gatez-no-such-package"
)]
async fn a_missing_binary_names_the_package_to_install() {
    Server::<BrokenRedis<MISSING>>::start().await;
}

#[test]
fn container_specs_publish_every_port() {
    fn ports_match<K: Kind>() {
        assert_eq!(K::container("x").ports.len(), K::PORTS, "{}", K::BINARY);
    }
    ports_match::<RedisKind>();
    ports_match::<ClickHouseKind>();
    ports_match::<EtcdKind>();
}
