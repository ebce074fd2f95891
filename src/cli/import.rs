use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Settings;
use crate::domain::ClinicCode;
use crate::service::import;
use crate::service::registry::Actor;
use crate::service::AppContext;

#[derive(Args)]
pub(super) struct ImportArgs {
    /// Code of the clinic whose patient numbers these are.
    #[arg(long)]
    clinic: String,
    /// CSV with the header `local_patient_id,name,national_id,phone`.
    file: PathBuf,
    /// Rows per transaction.
    #[arg(long, default_value_t = import::DEFAULT_BATCH)]
    batch_size: usize,
}

/// Imports, shows a progress bar on a terminal, prints every bad row with its
/// line number, then a one-line JSON summary on standard output.
pub(super) fn run(settings: Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let code = ClinicCode::parse(&args.clinic)?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let (ctx, _) = AppContext::open_existing(settings)?;
    let clinic = import::clinic(&ctx, &code)?
        .ok_or_else(|| anyhow::anyhow!("no clinic with code {}", code.as_str()))?;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let reader = std::io::BufReader::new(file);
    let report = import::legacy(
        &ctx,
        clinic.id,
        &Actor::system("cli"),
        reader,
        args.batch_size.max(1),
        |bytes| {
            if let Some(b) = &bar {
                b.set_position(bytes);
            }
        },
    )?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for bad in &report.bad {
        eprintln!("line {}: {}", bad.line, bad.reason);
    }
    println!(
        "{}",
        serde_json::json!({
            "rows": report.rows,
            "residents_created": report.residents_created,
            "cards_issued": report.cards_issued,
            "links_created": report.links_created,
            "unchanged": report.unchanged,
            "bad_rows": report.bad.len(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
