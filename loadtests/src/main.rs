//! `gatez-loadtest`: goose load scenarios against a `gatez up` the gate starts itself, judged
//! against `loadtests/gate.yaml` and recorded in `loadtests/RESULTS.md`.
//!
//! Load goes to 127.0.0.1 only, for a fixed time: every run stops by itself.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod attack;
mod config;
mod machine;
mod report;
mod scenarios;
mod sut;
mod verdict;

const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/gate.yaml");
const DEFAULT_RESULTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/RESULTS.md");

/// Exit code when the gate ran and a threshold failed.
const EXIT_THRESHOLD: u8 = 1;
/// Exit code when the gate could not run (no binary, port taken, bad config...).
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "gatez-loadtest",
    version,
    about = "Gatez load tests and performance gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// For each scenario: start `gatez up`, attack it for the configured time, stop it with
    /// SIGTERM, record the figures in RESULTS.md, and exit non-zero below a threshold.
    Gate {
        /// Scenarios to run, in order; every registered one when none is given.
        scenarios: Vec<String>,
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The gatez binary to test [default: `gatez` next to this executable].
        #[arg(long)]
        gatez_bin: Option<PathBuf>,
        #[arg(long, default_value = DEFAULT_RESULTS)]
        results: PathBuf,
        /// Measure and judge, but leave RESULTS.md alone.
        #[arg(long)]
        no_write: bool,
    },
    /// List the registered scenarios.
    List,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::List => {
            for s in scenarios::ALL {
                println!("{:<12} {}", s.name, s.about);
            }
            Ok(true)
        }
        Command::Gate {
            scenarios,
            config,
            gatez_bin,
            results,
            no_write,
        } => {
            let results = (!no_write).then_some(results);
            gate(&scenarios, &config, gatez_bin, results.as_deref()).await
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_THRESHOLD),
        Err(e) => {
            eprintln!("gatez-loadtest: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `Ok(false)` when a threshold failed.
async fn gate(
    names: &[String],
    config_path: &Path,
    gatez_bin: Option<PathBuf>,
    results: Option<&Path>,
) -> anyhow::Result<bool> {
    let config = config::GateConfig::load(config_path)?;
    let chosen: Vec<&scenarios::ScenarioDef> = if names.is_empty() {
        scenarios::ALL.iter().collect()
    } else {
        names
            .iter()
            .map(|n| scenarios::find(n))
            .collect::<anyhow::Result<_>>()?
    };
    // Fail before any run, not after the first scenario took its minute.
    for def in &chosen {
        anyhow::ensure!(
            config.scenarios.contains_key(def.name),
            "{} has no `scenarios.{}` section",
            config_path.display(),
            def.name
        );
    }
    let gatez_bin = match gatez_bin {
        Some(bin) => bin,
        None => sut::default_gatez_bin()?,
    };
    let build = build_description(&gatez_bin);
    if build.contains("debug") {
        eprintln!("warning: {build}; debug figures say little about release performance");
    }
    let command = command_line();

    let mut all_passed = true;
    for def in chosen {
        let scenario_config = &config.scenarios[def.name];
        let load = &scenario_config.load;
        println!("== {}: starting {} up", def.name, gatez_bin.display());
        let gatez = sut::Gatez::start(&gatez_bin, config.ports, config.startup_timeout).await?;
        let goose_scenarios = (def.build)(&gatez.endpoints)?;
        let goose_count = goose_scenarios.len();
        println!(
            "== {}: {} users for {} s",
            def.name,
            load.users,
            load.run_time.as_secs()
        );
        // Stop the child whatever the attack did, and only then look at the outcome.
        let attacked = attack::run(goose_scenarios, load).await;
        let shutdown = gatez.stop(config.shutdown_limit).await?;
        let measured = attacked?;

        let mut failures = verdict::judge(&measured.rows, &scenario_config.thresholds);
        failures.extend(verdict::judge_shutdown(&shutdown, config.shutdown_limit));
        let section = report::render(&report::Run {
            scenario: def.name,
            about: def.about,
            command: command.clone(),
            date_utc: now_utc(),
            commit: machine::git_commit(),
            machine: machine::Machine::detect(),
            build: build.clone(),
            load,
            goose_scenarios: goose_count,
            thresholds: &scenario_config.thresholds,
            measured: &measured,
            shutdown: &shutdown,
            shutdown_limit: config.shutdown_limit,
            failures: &failures,
        });
        println!("\n{section}");
        if let Some(path) = results {
            report::write(path, def.name, &section)?;
            println!("== {}: written to {}", def.name, path.display());
        }
        if failures.is_empty() {
            println!("== {}: PASS", def.name);
        } else {
            all_passed = false;
            eprintln!("== {}: FAIL", def.name);
            for failure in &failures {
                eprintln!("   {failure}");
            }
        }
    }
    Ok(all_passed)
}

/// How this invocation reads when re-typed: the program's file name, then the arguments.
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "gatez-loadtest".into());
    std::iter::once(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The profiles of both sides: cargo puts a build in `<target>/<profile>/`.
fn build_description(gatez_bin: &Path) -> String {
    let gatez_profile = std::fs::canonicalize(gatez_bin)
        .ok()
        .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into());
    let own_profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!("gatez: {gatez_profile} profile; load generator: {own_profile} profile")
}

fn now_utc() -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "unknown".into())
}
