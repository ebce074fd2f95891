//! CSRF protection for every form and for the holder page's `fetch`.
//!
//! Each browser gets a random value in an HttpOnly, SameSite=Strict cookie;
//! forms carry a token derived from it (SHA-256 with a fixed label), checked
//! in constant time on every POST. A cross-site page can neither read the
//! cookie nor compute the token, and SameSite=Strict keeps the cookie off
//! cross-site requests anyway. A present `Origin` header must also name this
//! host.

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::{random_bytes, sha256};

pub const CSRF_COOKIE: &str = "hc_csrf";
/// Name of the hidden form field.
pub const CSRF_FIELD: &str = "csrf";
/// Header used by `fetch` calls from the pages' scripts.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh cookie value: 32 random bytes, base64url.
pub fn new_cookie_value() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

fn well_formed(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The cookie value of this request, if it is one we could have set.
pub fn cookie_value(req: &HttpRequest) -> Option<String> {
    crate::proxy::cookie(req, CSRF_COOKIE).filter(|v| well_formed(v))
}

/// The form token for a cookie value.
pub fn token_for(cookie: &str) -> String {
    let mut input = b"healthcard-csrf-v1\0".to_vec();
    input.extend_from_slice(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(sha256(&input))
}

/// Checks a submitted token (form field or header) against the cookie.
pub fn check(req: &HttpRequest, submitted: Option<&str>) -> bool {
    let (Some(cookie), Some(submitted)) = (cookie_value(req), submitted) else {
        return false;
    };
    // The token is the proof; an Origin, when the browser sends one, must be ours too.
    crate::proxy::origin(req) != crate::proxy::Origin::Foreign
        && crate::crypto::same_secret(token_for(&cookie).as_bytes(), submitted.as_bytes())
}

/// The token sent in the [`CSRF_HEADER`] header.
pub fn header_token(req: &HttpRequest) -> Option<&str> {
    req.headers().get(CSRF_HEADER)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::cookie::Cookie;
    use actix_web::test::TestRequest;

    #[test]
    fn token_matches_only_its_cookie() {
        let c = new_cookie_value();
        assert!(well_formed(&c));
        let req = TestRequest::default()
            .cookie(Cookie::new(CSRF_COOKIE, c.clone()))
            .to_http_request();
        assert!(check(&req, Some(&token_for(&c))));
        assert!(!check(&req, Some(&token_for(&new_cookie_value()))));
        assert!(!check(&req, None));
        assert!(!check(&req, Some("")));
        let no_cookie = TestRequest::default().to_http_request();
        assert!(!check(&no_cookie, Some(&token_for(&c))));
    }

    #[test]
    fn foreign_origin_is_refused() {
        let c = new_cookie_value();
        let req = TestRequest::default()
            .insert_header(("host", "card.example"))
            .insert_header(("origin", "https://evil.example"))
            .cookie(Cookie::new(CSRF_COOKIE, c.clone()))
            .to_http_request();
        assert!(!check(&req, Some(&token_for(&c))));
        let req = TestRequest::default()
            .insert_header(("host", "card.example"))
            .insert_header(("origin", "https://card.example"))
            .cookie(Cookie::new(CSRF_COOKIE, c.clone()))
            .to_http_request();
        assert!(check(&req, Some(&token_for(&c))));
    }
}
