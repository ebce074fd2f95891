use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::service::keys;
use crate::service::registry::{entry, Actor};
use crate::service::AppContext;
use crate::store::access_log;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List signing keys (kid, state, created) as JSON lines, newest first.
    List,
    /// Make a new active key; the old one stays for verification.
    Rotate,
    /// Mark a key compromised: all its tokens stop verifying.
    Revoke { kid: String },
    /// Print the public JWKS (for offline kiosks and `healthcard verify --jwks`).
    Jwks,
}

pub fn run(settings: Settings, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let (ctx, _) = AppContext::open_existing(settings)?;
    let actor = Actor::system("cli");
    match cmd {
        KeysCommand::List => {
            for k in keys::list(&mut *ctx.conn()?)? {
                println!("{}", serde_json::to_string(&k)?);
            }
        }
        KeysCommand::Rotate => {
            let kid = ctx.with_tx(|c| {
                let kid = keys::rotate(c, &ctx.master)?;
                access_log::append(
                    c,
                    &ctx.master.chain_key(),
                    &[entry(&actor, "key.rotate", None, None, Some(kid.to_b64()))],
                )?;
                Ok(kid)
            })?;
            println!(
                "{}",
                serde_json::json!({"kid": kid.to_b64(), "state": "active"})
            );
        }
        KeysCommand::Revoke { kid } => {
            ctx.with_tx(|c| {
                keys::revoke(c, &kid)?;
                access_log::append(
                    c,
                    &ctx.master.chain_key(),
                    &[entry(&actor, "key.revoke", None, None, Some(kid.clone()))],
                )
            })?;
            println!("{}", serde_json::json!({"kid": kid, "state": "revoked"}));
        }
        KeysCommand::Jwks => {
            ctx.keys.reload()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&ctx.keys.current().jwks())?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
