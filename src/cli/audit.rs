use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::service::AppContext;
use crate::store::access_log;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the access log's hash chain and say where it breaks (exit 1 if it does).
    Verify,
}

pub fn run(settings: Settings, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify => {
            let (ctx, _) = AppContext::open(settings)?;
            let report = access_log::verify_chain(&mut *ctx.conn()?)?;
            match report.first_bad {
                None => {
                    println!("access log intact: {} rows checked", report.rows_checked);
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, why)) => {
                    println!(
                        "access log BROKEN at seq {seq}: {why} ({} rows checked before it)",
                        report.rows_checked
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}
