//! The legacy import (per-hospital cards from a CSV) as a use case, for the
//! portal's upload and `healthcard import-legacy` alike: the rows, their log
//! rows and the administrator or command that brought them are
//! `store::import`'s; this names the clinic and the actor.

use std::io::Read;

use super::registry::Actor;
use super::AppContext;
use crate::domain::{ClinicCode, ClinicId};
use crate::store::clinics::Clinic;
pub use crate::store::import::{BadRow, ImportError, ImportReport, DEFAULT_BATCH};
use crate::store::{clinics, import, StoreError};

/// The clinic the file's numbers belong to, by its code.
pub fn clinic(ctx: &AppContext, code: &ClinicCode) -> Result<Option<Clinic>, StoreError> {
    clinics::find_by_code(&mut *ctx.conn()?, code)
}

/// Imports `reader` for `clinic`, `batch_size` rows a transaction; `progress`
/// hears the bytes read so far.
pub fn legacy(
    ctx: &AppContext,
    clinic: ClinicId,
    by: &Actor,
    reader: impl Read + Send,
    batch_size: usize,
    progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut conn = ctx.conn().map_err(ImportError::Store)?;
    import::import_legacy(
        &mut conn,
        &ctx.master,
        clinic,
        (by.kind, by.name.as_str()),
        reader,
        batch_size,
        progress,
    )
}
