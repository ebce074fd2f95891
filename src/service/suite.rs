//! Which cryptography suite a data folder uses: chosen when the folder's
//! data is created (`HEALTHCARD_CRYPTO_SUITE`, default `default`), recorded
//! in the folder as the file [`SUITE_FILE`], and refused if a later start
//! asks for another one (there is no migration between suites).

use std::io::Write;
use std::path::Path;

use crate::crypto::Suite;

/// Name of the file inside the data folder that records the suite.
pub const SUITE_FILE: &str = "crypto_suite";

/// Why the suite cannot be settled.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("this data folder uses the {recorded} crypto suite; HEALTHCARD_CRYPTO_SUITE={asked} cannot change it (suites are chosen when a data folder is created)")]
    Changed { recorded: Suite, asked: Suite },
    #[error("this data folder already holds data made before crypto suites existed (the default suite); HEALTHCARD_CRYPTO_SUITE=gm applies only to a new data folder")]
    ExistingData,
    #[error(
        "{} in the data folder does not name a suite (default or gm)",
        SUITE_FILE
    )]
    Unreadable,
    #[error("recording the crypto suite: {0}")]
    Io(#[from] std::io::Error),
}

/// The suite to run with. `asked` is the setting (`None`: not given);
/// `fresh` says the store holds no data yet (no signing key), so a folder
/// without a record is new rather than older than suites.
pub fn settle(dir: &Path, asked: Option<Suite>, fresh: bool) -> Result<Suite, SuiteError> {
    let path = dir.join(SUITE_FILE);
    let recorded = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.trim()
                .parse::<Suite>()
                .map_err(|_| SuiteError::Unreadable)?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let suite = match (recorded, asked) {
        (Some(r), None) => return Ok(r),
        (Some(r), Some(a)) if r == a => return Ok(r),
        (Some(recorded), Some(asked)) => return Err(SuiteError::Changed { recorded, asked }),
        (None, asked) if fresh => asked.unwrap_or(Suite::Default),
        (None, Some(Suite::Gm)) => return Err(SuiteError::ExistingData),
        (None, _) => Suite::Default,
    };
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(format!("{suite}\n").as_bytes())?;
    file.sync_all()?;
    Ok(suite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_once_recorded_and_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(settle(d, Some(Suite::Gm), true).unwrap(), Suite::Gm);
        assert_eq!(std::fs::read_to_string(d.join(SUITE_FILE)).unwrap(), "gm\n");
        assert_eq!(settle(d, None, false).unwrap(), Suite::Gm);
        assert_eq!(settle(d, Some(Suite::Gm), false).unwrap(), Suite::Gm);
        assert!(matches!(
            settle(d, Some(Suite::Default), false),
            Err(SuiteError::Changed { .. })
        ));
    }

    #[test]
    fn a_folder_older_than_suites_is_default_and_stays_so() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(matches!(
            settle(d, Some(Suite::Gm), false),
            Err(SuiteError::ExistingData)
        ));
        assert!(
            !d.join(SUITE_FILE).exists(),
            "nothing recorded by a refusal"
        );
        assert_eq!(settle(d, None, false).unwrap(), Suite::Default);
        assert_eq!(settle(d, None, false).unwrap(), Suite::Default);
        std::fs::write(d.join(SUITE_FILE), "sm9\n").unwrap();
        assert!(matches!(
            settle(d, None, false),
            Err(SuiteError::Unreadable)
        ));
    }
}
