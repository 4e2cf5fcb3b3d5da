//! Gatez test harness: real infrastructure servers for tests.
//!
//! [`Redis`], [`ClickHouse`] and [`Etcd`] each start with an async constructor that returns
//! once the server really works, on a free loopback port and with its own temporary data
//! directory:
//!
//! ```no_run
//! # async fn demo() {
//! let mut redis = gatez_conformance::Redis::start().await;
//! let client = redis::Client::open(redis.url()).unwrap();
//! redis.stop().await; // SIGKILL: clients now get "connection refused"
//! redis.restart().await; // same port and data dir, ready again
//! # }
//! ```
//!
//! - **Teardown**: dropping a server kills it and deletes its data, also when the test
//!   panics. If the test process dies without unwinding (abort, a runner's timeout), the
//!   kernel kills the servers too (via `setpriv --pdeathsig`, from util-linux).
//! - **Parallel tests**: ports are random and checked; if another test's server wins the
//!   race for a port anyway, the start is retried on new ports.
//! - **Backends**: local child processes by default; Docker containers (testcontainers)
//!   with `GATEZ_INFRA=docker`, or when `GATEZ_INFRA` is unset and a Docker engine answers.
//!   `GATEZ_INFRA=process` forces processes. See [`Backend::current`].
//! - **Missing binaries** are a panic naming the packages to install, never a silent skip,
//!   e.g. `redis-server not found: install it with: apt-get install -y redis-server`.
//! - **Failures** panic with the reason and the tail of the server's logs.
//!
//! Every start logs one line to stderr, e.g.
//! `gatez-conformance: started redis-server 7.0.15 on 127.0.0.1:21234 (pid 123) in 25 ms`.

mod backend;
mod clickhouse;
mod docker;
mod etcd;
mod kind;
mod ports;
mod process;
mod redis;
mod server;

pub use backend::Backend;
pub use clickhouse::{ClickHouse, QueryError};
pub use etcd::Etcd;
pub use ports::free_ports;
pub use redis::Redis;
