use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::{ClinicCode, ClinicName, Scopes};
use crate::service::lookup;
use crate::service::registry::{self, Actor};
use crate::service::AppContext;
use crate::store::clinics::Clinic;
use crate::store::{Conflict, StoreError};

#[derive(Subcommand)]
pub(super) enum ClinicCommand {
    /// Make a clinic and print it as one JSON object with its API key (shown this once).
    Create {
        /// Short unique code: 1-32 of A-Z a-z 0-9 _ -.
        #[arg(long)]
        code: String,
        /// Display name: 1-128 characters.
        #[arg(long)]
        name: String,
        /// Comma-separated: verify, link, pii, xref, search, identify, register. identify: an ID
        /// number is not a secret, give it deliberately (docs/security.md); register: temporary cards.
        #[arg(long, default_value = "verify,link")]
        scopes: String,
    },
    /// List clinics as JSON lines.
    List,
}

pub(super) fn run(settings: Settings, cmd: ClinicCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ClinicCommand::Create { code, name, scopes } => {
            let code = ClinicCode::parse_new(&code)?;
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
            let out = serde_json::json!({
                "clinic": clinic_json(&clinic),
                "api_key": key.expose(),
            });
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        ClinicCommand::List => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            for c in lookup::clinics(&ctx)? {
                println!("{}", clinic_json(&c));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A clinic as one JSON line, the fields of the API's clinic view.
fn clinic_json(c: &Clinic) -> serde_json::Value {
    serde_json::json!({
        "id": c.id.to_string(),
        "code": c.code.as_str(),
        "name": c.name,
        "scopes": c.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": c.created_at.and_utc(),
    })
}
