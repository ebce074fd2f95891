use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::service::anchor::{take_checked, verify_log, Anchor};
use crate::service::AppContext;

#[derive(Subcommand)]
pub(super) enum AuditCommand {
    /// Check the access log's chain and say where it breaks (exit 1 if it does).
    Verify {
        /// Also prove that no row up to this anchor (from `audit anchor`) was rewritten.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Print a signed statement of the chain head (after checking the chain), to keep off this machine.
    Anchor,
}

pub(super) fn run(settings: Settings, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let (ctx, _) = AppContext::open_existing(settings)?;
    match cmd {
        AuditCommand::Verify { anchor } => {
            let anchor = match anchor {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    let anchor = Anchor::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    if let Err(e) = anchor.check(&ctx.master) {
                        println!("access log anchor REFUSED: {e}");
                        return Ok(ExitCode::FAILURE);
                    }
                    Some(anchor)
                }
            };
            let report = verify_log(&ctx, anchor.as_ref())?;
            match (report.first_bad, anchor) {
                (None, None) => {
                    println!("access log intact: {} rows checked", report.rows_checked);
                    Ok(ExitCode::SUCCESS)
                }
                (None, Some(a)) => {
                    println!(
                        "access log intact: {} rows checked; unchanged up to the anchor's seq {} (taken {})",
                        report.rows_checked,
                        a.seq,
                        a.at.to_rfc3339()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                (Some((seq, why)), _) => {
                    println!(
                        "access log BROKEN at seq {seq}: {why} ({} rows checked)",
                        report.rows_checked
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Anchor => {
            // The head first, then the chain up to and past it: what is
            // signed has been checked.
            let (anchor, report) = take_checked(&ctx)?;
            if let Some((seq, why)) = report.first_bad {
                println!("access log BROKEN at seq {seq}: {why}; no anchor made");
                return Ok(ExitCode::FAILURE);
            }
            print!("{}", anchor.to_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}
