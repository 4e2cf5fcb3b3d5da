//! `loadtests/gate.yaml`: where the system under test listens, the load shape of each
//! scenario and the thresholds it must meet.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Ports the gate's own `gatez up` listens on, on 127.0.0.1.
    pub ports: Ports,
    /// How long `gatez up` may take until every layer answers `/healthz`.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long `gatez` may take to exit after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_limit: Duration,
    pub scenarios: BTreeMap<String, ScenarioConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub edge: u16,
    pub ai: u16,
    pub agent: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioConfig {
    pub load: Load,
    pub thresholds: Thresholds,
}

/// The shape of the attack. Users loop without think time, so this is a closed-loop
/// saturation test: throughput is whatever `users` concurrent clients get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Concurrent goose users, spread evenly over the scenario's goose scenarios.
    pub users: usize,
    /// Users started per second.
    pub hatch_rate: f64,
    /// Measured time once every user has started (goose resets its metrics then).
    #[serde(with = "humantime_serde")]
    pub run_time: Duration,
    /// Per-request timeout: a hung server fails requests instead of stalling the run.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

/// Applied to each row of the scenario's report (one row per named request).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_rps: f64,
    pub max_p99_ms: f64,
    /// Failed requests / requests, 0.0 to 1.0.
    pub max_error_rate: f64,
}

impl GateConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = serde_yaml_ng::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let Ports { edge, ai, agent } = self.ports;
        anyhow::ensure!(
            edge != ai && ai != agent && edge != agent && edge != 0 && ai != 0 && agent != 0,
            "ports must be three distinct non-zero ports"
        );
        for (name, s) in &self.scenarios {
            let l = &s.load;
            anyhow::ensure!(
                l.users > 0,
                "scenarios.{name}.load.users must be at least 1"
            );
            anyhow::ensure!(
                l.hatch_rate > 0.0,
                "scenarios.{name}.load.hatch_rate must be positive"
            );
            // Goose counts run time in whole seconds.
            anyhow::ensure!(
                l.run_time.as_secs() >= 1 && l.run_time.subsec_nanos() == 0,
                "scenarios.{name}.load.run_time must be a whole number of seconds, at least 1s"
            );
            anyhow::ensure!(
                l.request_timeout.as_secs() >= 1 && l.request_timeout.subsec_nanos() == 0,
                "scenarios.{name}.load.request_timeout must be a whole number of seconds"
            );
            let t = &s.thresholds;
            anyhow::ensure!(
                (0.0..=1.0).contains(&t.max_error_rate),
                "scenarios.{name}.thresholds.max_error_rate must be between 0 and 1"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../gate.yaml");

    #[test]
    fn shipped_gate_yaml_parses() {
        let config = GateConfig::parse(SHIPPED).unwrap();
        for scenario in crate::scenarios::ALL {
            assert!(
                config.scenarios.contains_key(scenario.name),
                "gate.yaml has no section for scenario `{}`",
                scenario.name
            );
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = SHIPPED.replace("max_p99_ms:", "max_p99:");
        let err = format!("{:#}", GateConfig::parse(&text).unwrap_err());
        assert!(err.contains("max_p99"), "{err}");
    }
}
