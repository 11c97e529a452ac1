//! Cross-site request forgery: every state-changing console request (server
//! functions, the sign-in and sign-out forms) must come from a page of this
//! origin (Origin, or else Referer, names the Host) and, once signed in,
//! carry the session's CSRF token in the `x-csrf-token` header (the
//! console's server-function client adds it) or a `csrf_token` form field
//! (plain forms). SameSite=Strict on the cookie is a third, not the only, line.

use axum::http::{header, HeaderMap};

use super::secret::constant_time_eq;
use crate::store::identity::Session;

pub const HEADER: &str = "x-csrf-token";
pub const FIELD: &str = "csrf_token";

/// The `host[:port]` of an `Origin` or `Referer` value.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Whether the request says it comes from a page of this server. A request
/// naming neither Origin nor Referer is refused: browsers send Origin on
/// every POST, so only non-browser clients omit it, and they use the API.
pub fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let source = [header::ORIGIN, header::REFERER]
        .iter()
        .find_map(|name| headers.get(name).and_then(|v| v.to_str().ok()));
    match (host, source.and_then(authority)) {
        (Some(host), Some(from)) if from.eq_ignore_ascii_case(host) => Ok(()),
        (_, Some(from)) => Err(format!(
            "refused: the request comes from another site ({from})"
        )),
        _ => Err("refused: the request names no Origin; submit it from the console".to_owned()),
    }
}

/// Whether `given` is the session's CSRF token.
pub fn token_matches(given: Option<&str>, session: &Session) -> bool {
    given.is_some_and(|t| constant_time_eq(t, &session.csrf_token))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    #[test]
    fn a_request_from_this_origin_passes_and_others_are_refused() {
        let host = (header::HOST, "console.example:3000");
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "http://console.example:3000")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::REFERER, "https://console.example:3000/models?x=1")
        ]))
        .is_ok());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://evil.example")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://sub.console.example:3000")
        ]))
        .is_err());
        assert!(same_origin(&headers(&[host])).is_err());
    }
}
