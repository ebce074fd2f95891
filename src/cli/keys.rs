use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::service::keys;
use crate::service::registry::Actor;
use crate::service::AppContext;
use crate::token::Alg;

#[derive(Subcommand)]
pub(super) enum KeysCommand {
    /// List signing keys (kid, state, created) as JSON lines, newest first.
    List,
    /// Make a new active key; the old one stays for verification.
    Rotate {
        /// The new key's algorithm: ed25519, es256 or sm2 (default: sm2 in a
        /// data folder of the national suite, ed25519 otherwise).
        #[arg(long)]
        alg: Option<Alg>,
    },
    /// Mark a key compromised: all its tokens stop verifying.
    Revoke { kid: String },
    /// Print the public JWKS (for offline kiosks and `healthcard verify --jwks`).
    Jwks,
}

pub(super) fn run(settings: Settings, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let (ctx, _) = AppContext::open_existing(settings)?;
    let actor = Actor::system("cli");
    match cmd {
        KeysCommand::List => {
            for k in keys::list(&mut *ctx.conn()?)? {
                println!("{}", serde_json::to_string(&k)?);
            }
        }
        KeysCommand::Rotate { alg } => {
            let alg = alg.unwrap_or_else(|| keys::default_alg(&ctx.master));
            let kid = keys::rotate(&ctx, &actor, alg)?;
            println!(
                "{}",
                serde_json::json!({"kid": kid.to_b64(), "alg": alg, "state": "active"})
            );
        }
        KeysCommand::Revoke { kid } => {
            keys::revoke(&ctx, &actor, &kid)?;
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
