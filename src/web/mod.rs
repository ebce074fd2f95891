//! The web pages: the administrators' portal (`/admin`), the holder's card
//! (`/card`) and the clinic kiosk (`/kiosk`), served by the same binary.
//!
//! - HTML is rendered with maud (auto-escaping); CSS and JavaScript are
//!   static files compiled into the binary ([`assets`]) and served under
//!   `/static/`. No inline script or style, so the Content-Security-Policy
//!   needs neither `'unsafe-inline'` nor nonces.
//! - Simplified Chinese by default, English with `?lang=en` (kept in a cookie).
//! - Every form carries a CSRF token bound to an HttpOnly, SameSite=Strict
//!   cookie ([`csrf`]); every page has the security headers of [`page`].
//! - The pages call the same use cases as the API (`service::registry`,
//!   `http::handlers::verify::run`, `service::admins::sign_in`), so
//!   a change made here is logged and counted exactly as one made by API.

mod admin;
mod assets;
pub mod csrf;
mod holder;
mod i18n;
mod kiosk;
mod page;

use actix_web::web;

pub use i18n::Lang;

/// Registers the page routes (called by `startup::app`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(assets::scope())
        .service(admin::scope())
        .service(holder::scope())
        .service(kiosk::scope());
}
