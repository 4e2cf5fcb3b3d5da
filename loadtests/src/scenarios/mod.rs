//! The registry of gate scenarios. A layer issue adds its own: a module here with a
//! [`ScenarioDef`], an entry in [`ALL`], and a section in `loadtests/gate.yaml`.

use std::net::SocketAddr;

use goose::prelude::Scenario;

pub mod health;

/// Where the system under test listens.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub edge: SocketAddr,
    pub ai: SocketAddr,
    pub agent: SocketAddr,
}

impl Endpoints {
    /// The layers in report order, with the label used in request names.
    pub fn layers(&self) -> [(&'static str, SocketAddr); 3] {
        [("edge", self.edge), ("ai", self.ai), ("agent", self.agent)]
    }
}

pub struct ScenarioDef {
    /// Name on the command line, in gate.yaml and in the RESULTS.md markers.
    pub name: &'static str,
    /// One line for RESULTS.md and `gatez-loadtest list`.
    pub about: &'static str,
    /// The goose scenarios to run together. Each must set its own host, and the users are
    /// spread over them round-robin, so give each the same weight. Every distinct request
    /// name (`get_named`) becomes a row of the report, judged against the thresholds on its
    /// own: prefix names with the layer so rows stay per layer. Goose times a request up to
    /// its response headers; a scenario whose body is the point (a streamed completion)
    /// must time the body itself.
    pub build: fn(&Endpoints) -> anyhow::Result<Vec<Scenario>>,
}

pub const ALL: &[ScenarioDef] = &[health::DEF];

pub fn find(name: &str) -> anyhow::Result<&'static ScenarioDef> {
    ALL.iter().find(|s| s.name == name).ok_or_else(|| {
        let known: Vec<_> = ALL.iter().map(|s| s.name).collect();
        anyhow::anyhow!("unknown scenario `{name}`; known: {}", known.join(", "))
    })
}
