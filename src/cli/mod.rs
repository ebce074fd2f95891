//! The `healthcard` command line: one file per command.

mod admin;
mod audit;
mod bench_tokens;
mod clinic;
mod federation;
mod import;
mod keys;
mod resident;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};

#[derive(Parser)]
#[command(
    name = "healthcard",
    version,
    about = "Unified electronic health card service"
)]
pub struct Cli {
    /// TOML configuration file (also HEALTHCARD_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder: SQLite in db/, the master key file in keys/ (default ./data).
    /// Only serve and migrate create it.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// postgres://… or a SQLite path (default DATA_DIR/db/healthcard.db).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (creates the data folder, database, master key and signing key on first start).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Bring the database schema up to date.
    Migrate,
    /// Administrators.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Clinics and their API keys.
    #[command(subcommand)]
    Clinic(clinic::ClinicCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Federation of issuers: the operator's key and trust list, this node's entry.
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// Residents: guardians and dependants, merges.
    #[command(subcommand)]
    Resident(resident::ResidentCommand),
    /// Check a token's signature and times and print its claims.
    Verify(verify::VerifyArgs),
    /// Import per-hospital cards from CSV (local_patient_id,name,national_id,phone).
    ImportLegacy(import::ImportArgs),
    /// The access log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    #[command(hide = true)]
    BenchTokens(bench_tokens::BenchTokensArgs),
}

/// Parses the command line, runs the command and turns errors into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut overrides = Overrides {
        config_file: cli.config,
        data_dir: cli.data_dir,
        database_url: cli.database_url,
        bind: None,
    };
    if let Command::Serve { bind } = &cli.command {
        overrides.bind = bind.clone();
    }
    let settings = match Settings::load(&overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    crate::telemetry::init(
        if serving {
            "info,actix_server=warn"
        } else {
            "warn"
        },
        settings.log_json,
    );
    let result = match cli.command {
        Command::Serve { .. } => serve::run(settings),
        Command::Migrate => serve::migrate(settings),
        Command::Admin(c) => admin::run(settings, c),
        Command::Clinic(c) => clinic::run(settings, c),
        Command::Keys(c) => keys::run(settings, c),
        Command::Federation(c) => federation::run(settings, c),
        Command::Resident(c) => resident::run(settings, c),
        Command::Verify(a) => verify::run(settings, a),
        Command::ImportLegacy(a) => import::run(settings, a),
        Command::Audit(c) => audit::run(settings, c),
        Command::BenchTokens(a) => bench_tokens::run(settings, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
