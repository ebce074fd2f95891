use std::process::ExitCode;

use crate::config::Settings;
use crate::service::AppContext;
use crate::startup::Application;

pub(super) fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let db = settings.database_url_for_logs();
    let data_dir = settings.data_dir.clone();
    let loopback = settings.bind.starts_with("127.") || settings.bind.starts_with("[::1]");
    if settings.public_url.is_none() && !loopback {
        // Holder links would name the bind address, which people outside cannot open.
        eprintln!(
            "warning: HEALTHCARD_PUBLIC_URL is not set: holder links will start with {}",
            settings.public_base()
        );
    }
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings)?;
        let r = &app.report;
        if r.created_master_key {
            eprintln!(
                "created the master key file {} (mode 0600): back it up; without it the data cannot be read",
                crate::config::master_key_file(&data_dir).display()
            );
        }
        if let Some(k) = &r.rekeyed {
            eprintln!(
                "re-keyed the access log ({} rows; old chain {}): see the log.rekey row at seq {}",
                k.rows, k.old_chain, k.seq
            );
        }
        if r.created_signing_key {
            eprintln!("created the first signing key");
        }
        eprintln!("healthcard listening on {} (database {db})", listening(app.local_addr()));
        let me = command_prefix(&data_dir);
        if r.admins == 0 {
            eprintln!("next: make an administrator:   {me} admin create --username admin   (password on standard input)");
        }
        if r.clinics == 0 {
            eprintln!("next: make a clinic:           {me} clinic create --code C001 --name \"Clinic\" --scopes verify,link");
        }
        tracing::info!(port = app.port(), "serving");
        app.run_until_stopped().await?;
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn migrate(settings: Settings) -> anyhow::Result<ExitCode> {
    let db = settings.database_url_for_logs();
    let (_, report) = AppContext::open(settings)?;
    if let Some(k) = &report.rekeyed {
        println!(
            "re-keyed the access log from plain SHA-256 to HMAC-SHA-256: {} rows, old chain {} (log.rekey row at seq {})",
            k.rows, k.old_chain, k.seq
        );
    }
    println!("database {db} is up to date");
    Ok(ExitCode::SUCCESS)
}

/// The bound address as a URL to open; for a wildcard bind, the loopback
/// URL that reaches it from this machine.
fn listening(addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!(
            "{addr} (every interface; from this machine http://127.0.0.1:{})",
            addr.port()
        )
    } else {
        format!("http://{addr}")
    }
}

/// How this binary was invoked (e.g. `target/release/healthcard`, which is
/// what `cargo run` runs), with `--data-dir` when it is not the default: a
/// next step a newcomer can paste into another terminal as it is.
fn command_prefix(data_dir: &std::path::Path) -> String {
    let me = std::env::args()
        .next()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "healthcard".into());
    if data_dir == std::path::Path::new(crate::config::DEFAULT_DATA_DIR) {
        me
    } else {
        format!("{me} --data-dir {}", data_dir.display())
    }
}
