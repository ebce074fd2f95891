//! `healthcard federation …`: the operator's key and trust list (keygen,
//! sign, show: on the operator's machine, no data folder needed) and this
//! node's entry (describe).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Settings;
use crate::service::federation;
use crate::service::AppContext;
use crate::token::trust_list::{self, Check, Entry, Payload, PrivateJwk};
use crate::token::Jwk;

#[derive(Subcommand)]
pub(super) enum FederationCommand {
    /// Make the federation operator's key: a private JWK (OKP Ed25519 with d)
    /// written to KEYFILE with mode 0600; prints its public JWK.
    Keygen {
        /// Where to write the private key (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print this node's trust-list entry (code, name, base_url, keys,
    /// node_keys) as JSON, to send to the federation operator.
    Describe,
    /// Sign a trust list: a JSON array of entries in, the compact JWS out.
    Sign {
        /// The operator's private JWK file (from keygen).
        #[arg(long)]
        key: PathBuf,
        /// Days until the list expires (default 7).
        #[arg(long, default_value_t = 7)]
        expires_in_days: u32,
        /// The list's sequence number (default: the current Unix time, which
        /// grows from one signing to the next).
        #[arg(long)]
        sequence: Option<u64>,
        /// A JSON array of entries (what `describe` prints, one per issuer).
        entries: PathBuf,
    },
    /// What this (home) node discloses to peer cities about its residents.
    #[command(subcommand)]
    Peer(PeerCommand),
    /// This city's node key (signs its requests to other cities): rotate,
    /// retire the old one once the list carries the new one.
    #[command(subcommand, name = "node-key")]
    NodeKey(NodeKeyCommand),
    /// Verify a trust list and print its payload as JSON; exit 1 when the
    /// signature or the dates fail.
    Show {
        /// The operator's public JWK file (default HEALTHCARD_FEDERATION_ROOT_KEY).
        #[arg(long)]
        root: Option<PathBuf>,
        /// The compact JWS file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub(super) enum NodeKeyCommand {
    /// Make a new node key beside the one in use; prints its public JWK.
    /// Send the new `federation describe` (it lists both) to the operator:
    /// this city's nodes switch to the new key once the list in force
    /// carries it, and peers accept both while the list carries both.
    Rotate,
    /// Delete every node key but the newest, once the trust list in force
    /// carries the newest (refused before); then send `describe` again, so
    /// the next list drops the old key.
    Retire,
    /// List this city's node keys (oldest first) and the one in use.
    List,
}

#[derive(Subcommand)]
pub(super) enum PeerCommand {
    /// Set the disclosure policy for one peer city (in force on every node
    /// of this city within 30 s; logged).
    Set {
        /// The peer's issuer code (6 digits, e.g. 510100).
        #[arg(long)]
        issuer: String,
        /// `standard` (what a clinic without pii sees; the default for every
        /// peer) or `pii` (also the full ID number, for the peer's clinics
        /// that hold pii there).
        #[arg(long)]
        disclosure: String,
    },
    /// List the peers with a policy or a stand-in clinic, as JSON lines.
    List,
}

pub(super) fn run(settings: Settings, cmd: FederationCommand) -> anyhow::Result<ExitCode> {
    let actor = || crate::service::registry::Actor::system("cli");
    match cmd {
        FederationCommand::NodeKey(NodeKeyCommand::Rotate) => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            let key = federation::rotate_node_key(&ctx, &actor())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&Jwk::from_verifying_key(&key.verifying_key()))?
            );
            eprintln!("new node key made; send `healthcard federation describe` to the federation operator");
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::NodeKey(NodeKeyCommand::Retire) => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            // The list as the servers hold it (a URL is fetched now: no
            // runtime here, so the blocking client may run).
            let _ = ctx.federation.refresh_now();
            let retired = federation::retire_node_keys(&ctx, &actor())?;
            println!("{}", serde_json::json!({ "retired": retired }));
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::NodeKey(NodeKeyCommand::List) => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            let _ = ctx.federation.refresh_now();
            let in_use = ctx.federation.node_key().kid().to_b64();
            for k in ctx.federation.node_keys() {
                println!(
                    "{}",
                    serde_json::json!({"kid": k.kid().to_b64(), "in_use": k.kid().to_b64() == in_use})
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::Peer(PeerCommand::Set { issuer, disclosure }) => {
            let issuer = crate::domain::IssuerCode::parse(&issuer)?;
            let disclosure = crate::domain::Disclosure::parse(&disclosure)?;
            let (ctx, _) = AppContext::open_existing(settings)?;
            federation::set_disclosure(&ctx, &actor(), &issuer, disclosure)?;
            println!(
                "{}",
                serde_json::json!({"issuer": issuer.as_str(), "disclosure": disclosure.as_str()})
            );
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::Peer(PeerCommand::List) => {
            let (ctx, _) = AppContext::open_existing(settings)?;
            for p in federation::peers(&ctx)? {
                println!(
                    "{}",
                    serde_json::json!({
                        "issuer": p.issuer,
                        "disclosure": p.disclosure.as_str(),
                        "stand_in_clinic": p.clinic_id.map(|c| c.to_string()),
                        "updated_at": p.updated_at.and_utc(),
                    })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::Keygen { out } => keygen(&out),
        FederationCommand::Describe => {
            if crate::domain::IssuerCode::parse(&settings.issuer).is_err() {
                anyhow::bail!(
                    "HEALTHCARD_ISSUER is {:?}: a federated issuer is its city's 6-digit GB/T 2260 code (e.g. 370100)",
                    settings.issuer
                );
            }
            if settings.public_url.is_none() {
                eprintln!(
                    "warning: HEALTHCARD_PUBLIC_URL is not set: base_url is {}, which other cities cannot reach",
                    settings.public_base()
                );
            }
            let (ctx, _) = AppContext::open_existing(settings)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&federation::describe(&ctx))?
            );
            Ok(ExitCode::SUCCESS)
        }
        FederationCommand::Sign {
            key,
            expires_in_days,
            sequence,
            entries,
        } => sign(&key, expires_in_days, sequence, &entries),
        FederationCommand::Show { root, file } => {
            let root = root.or(settings.federation_root_key).ok_or_else(|| {
                anyhow::anyhow!("give --root JWKFILE or HEALTHCARD_FEDERATION_ROOT_KEY")
            })?;
            show(&root, &file)
        }
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let (key, private) = trust_list::generate_root();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .map_err(|e| anyhow::anyhow!("{}: {e} (keygen never overwrites a key)", out.display()))?;
    file.write_all(serde_json::to_string_pretty(&private)?.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&Jwk::from_verifying_key(&key.verifying_key()))?
    );
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn sign(
    key: &Path,
    expires_in_days: u32,
    sequence: Option<u64>,
    entries: &Path,
) -> anyhow::Result<ExitCode> {
    if !(1..=366).contains(&expires_in_days) {
        anyhow::bail!("--expires-in-days must be 1-366");
    }
    let private: PrivateJwk = serde_json::from_str(&read(key)?)
        .map_err(|e| anyhow::anyhow!("{}: not a private JWK: {e}", key.display()))?;
    let root = trust_list::root_from_private(&private)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let issuers: Vec<Entry> = serde_json::from_str(&read(entries)?)
        .map_err(|e| anyhow::anyhow!("{}: not a JSON array of entries: {e}", entries.display()))?;
    let now = chrono::Utc::now();
    let payload = Payload {
        sequence: sequence.unwrap_or(now.timestamp().max(0) as u64),
        issued_at: now,
        expires_at: now + chrono::Duration::days(expires_in_days.into()),
        issuers,
    };
    let jws = trust_list::sign(&root, &payload)?;
    // What a node would refuse is refused here, before it is sent out.
    trust_list::verify(
        &jws,
        &root.verifying_key(),
        &Check {
            now,
            leeway_secs: 60,
            last: None,
            check_dates: true,
        },
    )?;
    println!("{jws}");
    Ok(ExitCode::SUCCESS)
}

fn show(root: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let jwk: Jwk = serde_json::from_str(&read(root)?)
        .map_err(|e| anyhow::anyhow!("{}: not a public JWK: {e}", root.display()))?;
    let root = trust_list::root_from_public(&jwk).map_err(|e| anyhow::anyhow!("{e}"))?;
    let text = read(file)?;
    let check = |check_dates| Check {
        now: chrono::Utc::now(),
        leeway_secs: 60,
        last: None,
        check_dates,
    };
    let list = match trust_list::verify(&text, &root, &check(false)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("refused: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{}", serde_json::to_string_pretty(&list.payload)?);
    if let Err(e) = trust_list::verify(&text, &root, &check(true)) {
        eprintln!("refused: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
