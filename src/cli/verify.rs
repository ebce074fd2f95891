use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::config::Settings;
use crate::service::{keys, AppContext};
use crate::token::{self, qr, Claims, Jwks, KeyRing, Validation};

#[derive(Args)]
pub(super) struct VerifyArgs {
    /// The token text, `EHC1:…`
    #[arg(required_unless_present = "qr", conflicts_with = "qr")]
    token: Option<String>,
    /// Read the token from a QR code image (PNG).
    #[arg(long)]
    qr: Option<PathBuf>,
    /// Check against this JWKS file (e.g. a saved /.well-known/jwks.json) instead of the local keys.
    #[arg(long)]
    jwks: Option<PathBuf>,
    /// Clock-skew allowance in seconds.
    #[arg(long, default_value_t = 60)]
    leeway: i64,
}

fn claims_json(c: &Claims) -> serde_json::Value {
    json!({
        "iss": c.issuer,
        "iat": c.issued_at,
        "exp": c.expires_at,
        "cti": hex::encode(c.token_id),
        "card_id": c.card_id.to_string(),
        "kind": c.kind.as_str(),
    })
}

/// Prints one JSON object: the outcome and, when the signature checked out,
/// the claims. Exit status 0 when valid, 1 when not.
pub(super) fn run(settings: Settings, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let text = match (&args.token, &args.qr) {
        (Some(t), _) => token::trim_scanned(t).to_string(),
        (None, Some(path)) => {
            let png =
                std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            qr::decode_png(&png).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        (None, None) => anyhow::bail!("give a token or --qr FILE"),
    };
    let ring = match &args.jwks {
        Some(path) => {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let set: Jwks = serde_json::from_str(&raw)
                .map_err(|e| anyhow::anyhow!("{}: not a JWKS: {e}", path.display()))?;
            KeyRing::from_jwks(&settings.issuer, &set)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let issuer = settings.issuer.clone();
            let (ctx, _) = AppContext::open_existing(settings)?;
            let mut conn = ctx.conn()?;
            keys::load_ring(&mut conn, &ctx.master, &issuer)?
        }
    };
    let validation = Validation {
        now: chrono::Utc::now().timestamp(),
        leeway_secs: args.leeway,
    };
    let (out, ok) = match token::verify(&text, &ring, &validation) {
        Ok(v) => (
            json!({"valid": true, "kid": v.kid.to_b64(), "claims": claims_json(&v.claims)}),
            true,
        ),
        Err(r) => {
            let mut o = json!({
                "valid": false,
                "reason": r.reason.code(),
                "message": r.reason.message(),
            });
            if let Some(k) = &r.kid {
                o["kid"] = json!(k.to_b64());
            }
            if let Some(c) = &r.claims {
                o["claims"] = claims_json(c);
            }
            (o, false)
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
