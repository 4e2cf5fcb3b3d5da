//! `gatez`: serve one layer, or bring the whole stack up in one process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod keygen;
mod run;

#[derive(Parser)]
#[command(
    name = "gatez",
    version,
    about = "Gatez: one gateway for REST, LLM and agent traffic"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one layer.
    Serve {
        layer: Layer,
        #[arg(long, short, env = "GATEZ_CONFIG")]
        config: PathBuf,
    },
    /// Serve every enabled layer in one process, plus the mock providers when the config
    /// has a `mocks` section.
    Up {
        #[arg(long, short, env = "GATEZ_CONFIG", default_value = "deploy/gatez.yaml")]
        config: PathBuf,
    },
    /// Load and validate a config file, print the problems, and exit.
    CheckConfig {
        #[arg(long, short, env = "GATEZ_CONFIG")]
        config: PathBuf,
    },
    /// Write a new identity key pair (Ed25519): `identity.pem` (private, for
    /// `identity.signing_key`) and `identity.pub.pem` (for `identity.trusted_keys`).
    Keygen {
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
}

/// The layers `gatez serve` can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Layer {
    Edge,
    Ai,
    Agent,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { layer, config } => run::main(&config, Some(layer)),
        Command::Up { config } => run::main(&config, None),
        Command::CheckConfig { config } => match run::load_config(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Keygen { out_dir } => keygen::main(&out_dir),
    }
}
