//! CSS, JavaScript and the vendored QR encoder, compiled into the binary and
//! served under `/static/`: nothing to install or build next to the service.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// Name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
    (
        "card.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/card.js"),
    ),
    (
        "kiosk.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/kiosk.js"),
    ),
    (
        "print.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/print.js"),
    ),
    (
        "qrcode-generator.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/qrcode-generator.js"),
    ),
    (
        "LICENSE-qrcode-generator.txt",
        "text/plain; charset=utf-8",
        include_bytes!("assets/vendor/LICENSE-qrcode-generator.txt"),
    ),
];

pub(super) fn scope() -> actix_web::Scope {
    web::scope("/static")
        .route("/{name}", web::get().to(serve))
        .default_service(web::to(missing))
}

/// A short strong validator for a file's bytes.
fn etag(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&crate::crypto::sha256(bytes)[..8]))
}

async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some((_, ctype, bytes)) = FILES.iter().find(|(n, _, _)| *n == name.as_str()) else {
        return missing().await;
    };
    let tag = etag(bytes);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == tag);
    if fresh {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, *ctype))
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ))
        .body(*bytes)
}

async fn missing() -> HttpResponse {
    HttpResponse::NotFound()
        .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body("not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_encoder_keeps_its_licence() {
        let js = FILES
            .iter()
            .find(|f| f.0 == "qrcode-generator.js")
            .unwrap()
            .2;
        let text = std::str::from_utf8(js).unwrap();
        assert!(text.contains("Licensed under the MIT license"));
        assert!(FILES.iter().any(|f| f.0 == "LICENSE-qrcode-generator.txt"));
    }

    #[test]
    fn scripts_have_no_inline_handlers_to_allow() {
        for (name, _, bytes) in FILES {
            if name.ends_with(".js") && !name.starts_with("qrcode") {
                let text = std::str::from_utf8(bytes).unwrap();
                assert!(!text.contains("eval("), "{name} uses eval");
                assert!(!text.contains("innerHTML"), "{name} uses innerHTML");
            }
        }
    }
}
