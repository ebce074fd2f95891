use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::{ClinicCode, ClinicName, Scopes};
use crate::http::views::{ClinicView, CreatedClinic};
use crate::service::registry::{self, Actor};
use crate::service::AppContext;
use crate::store::{clinics, Conflict, StoreError};

#[derive(Subcommand)]
pub enum ClinicCommand {
    /// Make a clinic and print it as one JSON object with its API key (shown this once).
    Create {
        /// Short unique code: 1-32 of A-Z a-z 0-9 _ -.
        #[arg(long)]
        code: String,
        /// Display name: 1-128 characters.
        #[arg(long)]
        name: String,
        /// Comma-separated: verify, link, pii, xref, search, identify (identify: an ID number is not a secret; give it deliberately, see docs/security.md).
        #[arg(long, default_value = "verify,link")]
        scopes: String,
    },
    /// List clinics as JSON lines.
    List,
}

pub fn run(settings: Settings, cmd: ClinicCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClinicCommand::Create { code, name, scopes } => {
            let code = ClinicCode::parse(&code)?;
            let scopes = Scopes::parse(&scopes)?;
            let name = ClinicName::parse(&name)?.into_string();
            let (ctx, _) = AppContext::open_existing(settings)?;
            let (clinic, key) =
                registry::create_clinic(&ctx, &Actor::system("cli"), &code, &name, &scopes)
                    .map_err(|e| match e {
                        StoreError::Conflict(Conflict::ClinicCodeTaken) => {
                            anyhow::anyhow!("clinic code {:?} is taken", code.as_str())
                        }
                        other => other.into(),
                    })?;
            let out = CreatedClinic {
                clinic: ClinicView::from(&clinic),
                api_key: key.expose().to_string(),
            };
            println!("{}", serde_json::to_string(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        ClinicCommand::List => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            for c in clinics::list(&mut *ctx.conn()?)? {
                println!("{}", serde_json::to_string(&ClinicView::from(&c))?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
