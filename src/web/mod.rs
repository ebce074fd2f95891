//! The web pages: admin portal, holder's card, kiosk.

use actix_web::web;

/// Registers the page routes.
pub fn routes(_cfg: &mut web::ServiceConfig) {}
