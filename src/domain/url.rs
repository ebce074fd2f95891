//! The one rule for a base URL given in settings or a trust list.

/// `http(s)://host[:port][/path]` without query, fragment, user or spaces,
/// returned without a trailing slash; `None` otherwise (each caller says
/// which setting or entry was wrong).
pub fn http_base_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || url.contains(['?', '#'])
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(url.trim_end_matches('/').to_string())
}
