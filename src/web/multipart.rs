//! Just enough `multipart/form-data` (RFC 7578) for the legacy CSV upload:
//! a few small text fields and one file, read whole into memory under a limit.

use actix_web::http::header;
use actix_web::{web, HttpRequest};

/// One part of the form.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum MultipartError {
    TooLarge,
    Malformed,
    Io,
}

/// The boundary of a `multipart/form-data` request.
pub(super) fn boundary(req: &HttpRequest) -> Option<String> {
    let ct = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (mime, params) = ct.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

/// Reads the whole body, refusing more than `limit` bytes.
pub(super) async fn read_body(
    payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, MultipartError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(b)) => Ok(b.to_vec()),
        Ok(Err(_)) => Err(MultipartError::Io),
        Err(_) => Err(MultipartError::TooLarge),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// `name="x"` and `filename="y"` of a Content-Disposition header value.
fn disposition_params(value: &str) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut filename = None;
    for p in value.split(';').skip(1) {
        if let Some((k, v)) = p.trim().split_once('=') {
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(v),
                "filename" => filename = Some(v),
                _ => {}
            }
        }
    }
    (name, filename)
}

/// Splits a body into its parts.
pub(super) fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0).ok_or(MultipartError::Malformed)? + delim.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(MultipartError::Malformed);
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or(MultipartError::Malformed)?;
        let head =
            std::str::from_utf8(&body[pos..head_end]).map_err(|_| MultipartError::Malformed)?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-disposition") {
                    (name, filename) = disposition_params(v);
                }
            }
        }
        let data_start = head_end + 4;
        let mut end_delim = b"\r\n".to_vec();
        end_delim.extend_from_slice(delim);
        let data_end = find(body, &end_delim, data_start).ok_or(MultipartError::Malformed)?;
        parts.push(Part {
            name: name.ok_or(MultipartError::Malformed)?,
            filename,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + end_delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_a_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"old.csv\"\r\nContent-Type: text/csv\r\n\r\n\
local_patient_id,name\r\nA1,\xe5\xbc\xa0\xe4\xb8\x89\r\n\r\n--XyZ--\r\n";
        let parts = parse(body, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "csrf");
        assert_eq!(parts[0].data, b"abc");
        assert_eq!(parts[1].filename.as_deref(), Some("old.csv"));
        assert_eq!(
            parts[1].data,
            "local_patient_id,name\r\nA1,张三\r\n".as_bytes()
        );
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(
            parse(b"nothing here", "XyZ"),
            Err(MultipartError::Malformed)
        );
        assert_eq!(
            parse(
                b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
                "XyZ"
            ),
            Err(MultipartError::Malformed)
        );
    }
}
