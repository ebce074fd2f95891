//! `healthcard resident guardian add|remove|list`: the card office's family
//! changes from the command line, through the same use cases as the API
//! (the same rules, the same two access-log rows per change);
//! `healthcard resident merge SOURCE INTO`: the API's merge.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::config::Settings;
use crate::domain::{Relation, ResidentId};
use crate::service::families::{self, Member};
use crate::service::merges;
use crate::service::registry::Actor;
use crate::service::AppContext;

#[derive(Subcommand)]
pub(super) enum ResidentCommand {
    /// A resident's guardians and dependants.
    #[command(subcommand)]
    Guardian(GuardianCommand),
    /// Merge the temporary or duplicate record SOURCE into the real record
    /// INTO (resident ids), irreversibly: SOURCE's clinic numbers move to
    /// INTO, its live cards are replaced by INTO's card. Refused when both
    /// have a number at one clinic. Prints what changed as JSON.
    Merge { source: String, into: String },
}

#[derive(Subcommand)]
pub(super) enum GuardianCommand {
    /// Make GUARDIAN a guardian of DEPENDANT (resident ids).
    Add {
        dependant: String,
        guardian: String,
        /// father, mother, grandparent, spouse, child, sibling, other_relative, legal_guardian
        #[arg(long)]
        relation: String,
        /// The office attests an adult dependant's consent.
        #[arg(long)]
        consent: bool,
    },
    /// End GUARDIAN's guardianship of DEPENDANT.
    Remove { dependant: String, guardian: String },
    /// A resident's guardians and dependants in force, as JSON lines.
    List { resident: String },
}

fn resident(id: &str) -> anyhow::Result<ResidentId> {
    id.parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a resident id"))
}

fn line(side: &str, m: &Member) -> serde_json::Value {
    let g = &m.guardianship;
    json!({
        "side": side,
        "resident_id": m.resident.id.to_string(),
        "name": m.resident.name,
        "relation": g.relation.as_str(),
        "since": g.created_at.and_utc(),
        "consent": g.consent.is_some(),
    })
}

pub(super) fn run(settings: Settings, cmd: ResidentCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::system("cli");
    let cmd = match cmd {
        ResidentCommand::Guardian(cmd) => cmd,
        ResidentCommand::Merge { source, into } => {
            let (source, into) = (resident(&source)?, resident(&into)?);
            let (ctx, _) = AppContext::open_existing(settings)?;
            let done = merges::merge_residents(&ctx, &actor, source, into)?;
            println!(
                "{}",
                json!({"source": done.source.to_string(), "merged_into": done.into.to_string(),
                       "replaced_by": done.target_card.to_string(),
                       "replaced_cards": done.replaced_cards.iter().map(ToString::to_string).collect::<Vec<_>>(),
                       "moved_links": done.moved_links})
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    match cmd {
        GuardianCommand::Add {
            dependant,
            guardian,
            relation,
            consent,
        } => {
            let (dependant, guardian) = (resident(&dependant)?, resident(&guardian)?);
            let relation: Relation = relation.parse()?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let g = families::add_guardian(&ctx, &actor, dependant, guardian, relation, consent)?;
            println!(
                "{}",
                json!({"dependant_id": g.dependant.to_string(), "guardian_id": g.guardian.to_string(),
                       "relation": g.relation.as_str(), "consent": g.consent.is_some()})
            );
        }
        GuardianCommand::Remove {
            dependant,
            guardian,
        } => {
            let (dependant, guardian) = (resident(&dependant)?, resident(&guardian)?);
            let (ctx, _) = AppContext::open_existing(settings)?;
            families::remove_guardian(&ctx, &actor, dependant, guardian)?;
        }
        GuardianCommand::List { resident: r } => {
            let r = resident(&r)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            let fam = families::family(&ctx, r)?;
            for m in &fam.guardians {
                println!("{}", line("guardian", m));
            }
            for m in &fam.dependants {
                println!("{}", line("dependant", m));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
