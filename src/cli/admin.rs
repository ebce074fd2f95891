//! `healthcard admin …`: administrators' accounts, from the operator's shell.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::{NewPassword, Username};
use crate::service::admins;
use crate::service::registry::Actor;
use crate::service::AppContext;
use crate::store::{Conflict, StoreError};

#[derive(Subcommand)]
pub(super) enum AdminCommand {
    /// Make an administrator; the password is read from standard input (one
    /// line; not echoed on a terminal). At least 12 characters, not easy to guess.
    Create {
        #[arg(long)]
        username: String,
    },
    /// List administrators, one JSON object a line (never a password hash).
    List,
    /// Disable an administrator: no more sign-ins, and every session ends now.
    Disable {
        #[arg(long)]
        username: String,
    },
    /// Enable a disabled administrator again.
    Enable {
        #[arg(long)]
        username: String,
    },
    /// Set a new password, read from standard input like `create`; the
    /// account's sessions end.
    Passwd {
        #[arg(long)]
        username: String,
    },
    /// Clear the sign-in throttle for a username, from every source address.
    Unlock {
        #[arg(long)]
        username: String,
    },
    /// Administrators' sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Subcommand)]
pub(super) enum SessionsCommand {
    /// End every session of an administrator (API tokens and portal cookies).
    Revoke {
        #[arg(long)]
        username: String,
    },
}

/// The new password: without echo when standard input is a terminal, else
/// one line of it (scripts pipe it in).
fn read_password(username: &Username) -> anyhow::Result<NewPassword> {
    let text = if std::io::stdin().is_terminal() {
        eprint!("New password for {}: ", username.as_str());
        rpassword::read_password()?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Ok(NewPassword::parse(&text, username.as_str())?)
}

fn no_such(username: &Username) -> impl Fn(StoreError) -> anyhow::Error + '_ {
    move |e| match e {
        StoreError::NotFound => anyhow::anyhow!("no administrator named {:?}", username.as_str()),
        StoreError::Conflict(Conflict::UsernameTaken) => {
            anyhow::anyhow!("username {:?} is taken", username.as_str())
        }
        other => other.into(),
    }
}

fn view(a: &crate::store::admins::Admin) -> serde_json::Value {
    serde_json::json!({
        "id": a.id.to_string(),
        "username": a.username.as_str(),
        "created_at": a.created_at.and_utc(),
        "disabled": a.disabled_at.is_some(),
        "disabled_at": a.disabled_at.map(|t| t.and_utc()),
    })
}

pub(super) fn run(settings: Settings, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system("cli");
    let user = |u: &str| Username::parse(u).map_err(anyhow::Error::from);
    match cmd {
        AdminCommand::Create { username } => {
            let username = user(&username)?;
            let password = read_password(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let a =
                admins::create(&ctx, &actor, &username, &password).map_err(no_such(&username))?;
            println!("{}", view(&a));
        }
        AdminCommand::List => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            for a in admins::list(&ctx)? {
                println!("{}", view(&a));
            }
        }
        AdminCommand::Disable { username } => {
            let username = user(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let a = admins::disable(&ctx, &actor, &username).map_err(no_such(&username))?;
            println!("{}", view(&a));
        }
        AdminCommand::Enable { username } => {
            let username = user(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let a = admins::enable(&ctx, &actor, &username).map_err(no_such(&username))?;
            println!("{}", view(&a));
        }
        AdminCommand::Passwd { username } => {
            let username = user(&username)?;
            let password = read_password(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let a = admins::set_password(&ctx, &actor, &username, &password)
                .map_err(no_such(&username))?;
            println!("{}", view(&a));
        }
        AdminCommand::Unlock { username } => {
            let username = user(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let n = admins::unlock(&ctx, &actor, &username)?;
            println!(
                "{}",
                serde_json::json!({"username": username.as_str(), "counters_cleared": n})
            );
        }
        AdminCommand::Sessions(SessionsCommand::Revoke { username }) => {
            let username = user(&username)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let n = admins::revoke_sessions(&ctx, &actor, &username).map_err(no_such(&username))?;
            println!(
                "{}",
                serde_json::json!({"username": username.as_str(), "sessions_ended": n})
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
