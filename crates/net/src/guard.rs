//! Who may talk to a listener. Programs on this machine send no `Origin`; a web
//! page in the person's browser always does for the requests that could read an
//! answer, and a page that rebinds its own name to 127.0.0.1 (DNS rebinding)
//! sends its own name as `Host`. So: the `Host` must name this machine (for a
//! loopback listener), an `Origin` must be local or one the person allowed (the
//! `allowed_origins` setting), CORS preflights are answered here (never by the
//! server behind), and no `Access-Control-*` header from behind reaches the client:
//! llama-server reflects any `Origin`, with credentials.

use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The origins of browser apps the person lets use Switchyard's listeners, shared
/// by every listener so that a settings change applies at once.
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Arc<RwLock<Vec<String>>>);

impl AllowedOrigins {
    pub fn set(&self, origins: &[String]) {
        *switchyard_base::locks::write(&self.0) = origins.iter().map(|o| normalize(o)).collect();
    }

    fn contains(&self, origin: &str) -> bool {
        let origin = normalize(origin);
        switchyard_base::locks::read(&self.0).contains(&origin)
    }
}

/// `HTTPS://Example.org:3000/` → `https://example.org:3000`.
fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `origin` is a valid value for the `allowed_origins` setting:
/// `scheme://host[:port]`, nothing after.
pub fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.trim().split_once("://") else {
        return false;
    };
    matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

/// One listener's rules.
#[derive(Debug, Clone)]
pub struct Guard {
    allowed: AllowedOrigins,
    /// A listener on a network address: machines name this one as they like, so
    /// any `Host` is taken (such a listener requires a key instead).
    any_host: bool,
}

impl Guard {
    /// For a listener bound to `bound` (loopback: the `Host` must be local).
    pub fn new(allowed: AllowedOrigins, bound: std::net::IpAddr) -> Self {
        Self {
            allowed,
            any_host: !bound.is_loopback(),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        origin_host(origin).is_some_and(is_local_host) || self.allowed.contains(origin)
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(guard, guard::check)`.
pub async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host_ok = guard.any_host
        || headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .is_some_and(is_local_host);
    let origin = match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(origin)) if guard.origin_allowed(origin) => Some(origin.to_owned()),
        Some(_) => {
            return forbidden(
                "the request comes from a web page Switchyard does not know (its Origin)",
            )
        }
    };
    if !host_ok {
        return forbidden("the Host header does not name this machine");
    }
    if request.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(origin.as_deref(), headers);
    }
    let mut response = next.run(request).await;
    let answer = response.headers_mut();
    strip_cors(answer);
    if let Some(origin) = origin.and_then(|origin| HeaderValue::from_str(&origin).ok()) {
        answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        answer.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
    }
    answer.append(header::VARY, HeaderValue::from_static("origin"));
    response
}

/// Removes every `Access-Control-*` header (the server behind has no say in CORS).
pub fn strip_cors(headers: &mut HeaderMap) {
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
}

/// A preflight from an allowed origin: which methods and headers it may send. No
/// credentials: keys travel in `Authorization`, which is allowed as a header.
fn preflight(origin: Option<&str>, headers: &HeaderMap) -> Response {
    let Some(origin) = origin.and_then(|origin| HeaderValue::from_str(origin).ok()) else {
        return forbidden("a CORS preflight without an Origin");
    };
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("authorization, content-type"));
    let mut response = StatusCode::NO_CONTENT.into_response();
    let answer = response.headers_mut();
    answer.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    answer.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
    );
    answer.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
    answer.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    answer.insert(header::VARY, HeaderValue::from_static("origin"));
    response
}

fn forbidden(why: &str) -> Response {
    let body = json!({
        "error": {
            "code": "FORBIDDEN_HOST",
            "message": format!("Only local programs and allowed web apps may use Switchyard: {why}."),
            "suggestion": "Call it from a program on this machine, or add the web app's origin to the `allowed_origins` setting.",
            "type": "switchyard_forbidden",
        }
    });
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// `localhost`, `127.0.0.1` (any 127.x) and `[::1]`, with or without a port.
pub fn is_local_host(host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((inside, after)) if after.is_empty() || is_port(after) => inside.to_owned(),
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if is_port(&format!(":{port}")) => name.to_owned(),
            Some(_) => return false,
            None => host.clone(),
        }
    };
    match name.as_str() {
        "localhost" | "::1" => true,
        _ => name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|address| address.is_loopback()),
    }
}

fn is_port(colon_port: &str) -> bool {
    colon_port
        .strip_prefix(':')
        .is_some_and(|port| !port.is_empty() && port.chars().all(|ch| ch.is_ascii_digit()))
}

/// The host part of an `Origin` (`http://localhost:3000` → `localhost:3000`);
/// `null` and other opaque origins have none.
fn origin_host(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    Some(rest.split('/').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_local() {
        for local in [
            "localhost",
            "localhost:8081",
            "127.0.0.1:8081",
            "127.1.2.3",
            "[::1]:8081",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_local_host(local), "{local}");
        }
        for foreign in [
            "evil.example",
            "evil.example:8081",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "0.0.0.0:8081",
            "[::1",
            "[::1]x",
            "192.168.1.2:8081",
            "localhost:",
            "",
        ] {
            assert!(!is_local_host(foreign), "{foreign}");
        }
        assert_eq!(origin_host("http://localhost:3000"), Some("localhost:3000"));
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("file:///x"), None);
    }

    #[test]
    fn allowed_origins_match_as_browsers_send_them() {
        let allowed = AllowedOrigins::default();
        allowed.set(&["https://Chat.Example.org/".into()]);
        let guard = Guard::new(allowed, std::net::Ipv4Addr::LOCALHOST.into());
        assert!(guard.origin_allowed("https://chat.example.org"));
        assert!(guard.origin_allowed("http://127.0.0.1:5173"));
        assert!(!guard.origin_allowed("https://chat.example.org.evil.example"));
        assert!(!guard.origin_allowed("http://chat.example.org"));
        assert!(!guard.origin_allowed("null"));
        assert!(is_origin("https://chat.example.org:8443"));
        assert!(!is_origin("https://chat.example.org/path"));
        assert!(!is_origin("chat.example.org"));
    }
}
