use std::io::BufRead;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::crypto::hash_password;
use crate::domain::Username;
use crate::service::registry::{entry, Actor};
use crate::service::AppContext;
use crate::store::{access_log, admins};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Make an administrator; the password is read from standard input (one line).
    Create {
        #[arg(long)]
        username: String,
    },
}

pub fn run(settings: Settings, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Create { username } => {
            let username = Username::parse(&username)?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 8 {
                anyhow::bail!("the password must be at least 8 characters");
            }
            let phc = hash_password(password)?;
            let (ctx, _) = AppContext::open(settings)?;
            let admin = ctx.with_tx(|c| {
                let a = admins::create(c, &username, &phc)?;
                access_log::append(
                    c,
                    &[entry(
                        &Actor::system("cli"),
                        "admin.create",
                        None,
                        None,
                        Some(username.as_str().to_string()),
                    )],
                )?;
                Ok(a)
            })?;
            println!(
                "{}",
                serde_json::json!({"id": admin.id.to_string(), "username": admin.username.as_str()})
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
