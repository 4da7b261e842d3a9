//! CORS for the status endpoint, as the deployed HTTP API answers it: a page on another origin
//! (the DevHive web app on its own dev port) calls `GET …/ws/status` with a bearer token, which
//! makes the browser send a preflight first. Origins come from `--cors-origins`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// How long a browser may cache a preflight answer.
pub const MAX_AGE_S: u32 = 600;

/// The allowed origins: any (`*`) or a list.
#[derive(Debug, Clone)]
pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    /// From a comma-separated list; `*` allows every origin.
    pub fn new(list: &str) -> Self {
        let origins: Vec<String> = list
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        Cors {
            any: origins.iter().any(|o| o == "*"),
            origins,
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if it is allowed.
    fn allow(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(http::header::ORIGIN)?;
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(text))
            .then(|| origin.clone())
    }

    /// Add the CORS headers a response to `request` needs.
    pub fn decorate(&self, request: &HeaderMap, response: &mut Response) {
        if let Some(origin) = self.allow(request) {
            let headers = response.headers_mut();
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// The answer to a preflight `OPTIONS`: 204 with what may be sent, or 403 naming the fix.
    pub fn preflight(&self, request: &HeaderMap) -> Response {
        let Some(origin) = self.allow(request) else {
            return (
                StatusCode::FORBIDDEN,
                "origin not allowed: add it to --cors-origins (DEVHIVE_CORS_ORIGINS)",
            )
                .into_response();
        };
        (
            StatusCode::NO_CONTENT,
            [
                (http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin),
                (
                    http::header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, OPTIONS"),
                ),
                (
                    http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("authorization, content-type"),
                ),
                (
                    http::header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from(MAX_AGE_S),
                ),
                (http::header::VARY, HeaderValue::from_static("Origin")),
            ],
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ORIGIN, o.parse().unwrap());
        h
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_are_not() {
        let cors = Cors::new("http://localhost:5173, https://app.example.com/");
        assert_eq!(
            cors.allow(&origin("https://app.example.com")).unwrap(),
            "https://app.example.com"
        );
        assert!(cors.allow(&origin("https://evil.example")).is_none());
        assert!(cors.allow(&HeaderMap::new()).is_none());
        assert_eq!(
            cors.preflight(&origin("https://evil.example")).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Cors::new("*").allow(&origin("https://x.test")).unwrap(),
            "*"
        );
    }
}
