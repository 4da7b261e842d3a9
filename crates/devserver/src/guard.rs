//! What keeps web pages away from the dev server. It listens on the developer's own machine,
//! and every page their browser opens can send requests to it: through DNS rebinding (a name
//! the attacker controls, resolved to 127.0.0.1, so the browser treats the server as the
//! attacker's own origin) and through cross-origin "simple" requests (a `text/plain` POST
//! needs no preflight). Three checks answer that:
//!
//! - [`host`], on every route: the request must be addressed (`Host`) to a loopback name or
//!   address, the address the server was bound to, or a name given with `--allow-host`: a
//!   rebinding page's requests carry the attacker's name, and get 421.
//! - [`sigv4`], on the Invoke and Management APIs: an `Authorization` header shaped like the
//!   AWS SDKs' Signature Version 4 (any key: the signature is not verified). A browser cannot
//!   send one cross-origin without a preflight, which this server never grants.
//! - [`simple_content_type`]: the content types a cross-origin form or `fetch` may send
//!   without a preflight are refused there too (the SDKs send `application/octet-stream` or
//!   none).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::hosts::host_part;
use crate::state::App;

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// Middleware on every route: 421 Misdirected Request unless the request's `Host` (and its
/// URI's authority, in absolute form) is one [`crate::hosts::Hosts`] allows.
pub async fn host(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let named = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)").to_owned());
    let authority = request.uri().authority().map(|a| a.as_str().to_owned());
    let refused = match (&named, &authority) {
        (None, None) => Some("(no Host header)".to_owned()),
        _ => [named, authority]
            .into_iter()
            .flatten()
            .find(|a| !app.hosts.allows(a)),
    };
    let Some(refused) = refused else {
        return next.run(request).await;
    };
    tracing::warn!(host = %refused, path = %request.uri().path(), "refused: Host is not loopback or --allow-host");
    let suggestion = host_part(&refused)
        .map(|h| format!("--allow-host {h}"))
        .unwrap_or_else(|| "--allow-host NAME".to_owned());
    text(
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "Misdirected request: this DevHive Realtime dev server answers only requests addressed \
             to {} (not {refused:?}), so that a web page cannot reach it through DNS rebinding. \
             To serve it under that name, start it with {suggestion} (repeatable; \
             DEVHIVE_ALLOW_HOSTS takes a comma-separated list).\n",
            app.hosts.describe()
        ),
    )
}

/// Why an `Authorization` header is not a Signature Version 4 one for `service`, if it is not:
/// `AWS4-HMAC-SHA256 Credential=KEY/YYYYMMDD/REGION/SERVICE/aws4_request,
/// SignedHeaders=host;…, Signature=<64 hex digits>`, as the AWS SDKs write it. Key, region and
/// signature are not checked further: any credentials do, as on the dev server's other APIs.
pub fn sigv4(headers: &HeaderMap, service: &str) -> Result<(), String> {
    let expected = format!(
        "an AWS Signature Version 4 Authorization header (AWS4-HMAC-SHA256 \
         Credential=KEY/DATE/REGION/{service}/aws4_request, SignedHeaders=…, Signature=…) as the \
         AWS SDKs send with any credentials"
    );
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(format!("no Authorization header; expected {expected}"));
    };
    let Ok(value) = value.to_str() else {
        return Err(format!(
            "the Authorization header is not text; expected {expected}"
        ));
    };
    let Some(params) = value.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(format!(
            "the Authorization header does not start with AWS4-HMAC-SHA256; expected {expected}"
        ));
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for param in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let scope: Vec<&str> = credential.unwrap_or_default().split('/').collect();
    let scope_ok = matches!(
        scope.as_slice(),
        [key, date, region, s, "aws4_request"]
            if !key.is_empty()
                && date.len() == 8
                && date.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && *s == service
    );
    if !scope_ok {
        return Err(format!(
            "the Authorization header's Credential {:?} is not KEY/YYYYMMDD/REGION/{service}/aws4_request; \
             expected {expected}",
            credential.unwrap_or("")
        ));
    }
    let signed = signed.unwrap_or_default();
    let header_name = |h: &str| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !signed.split(';').all(header_name) || !signed.split(';').any(|h| h == "host") {
        return Err(format!(
            "the Authorization header's SignedHeaders {signed:?} is not a list of lower-case \
             header names including host; expected {expected}"
        ));
    }
    let signature = signature.unwrap_or_default();
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the Authorization header's Signature is not 64 hexadecimal digits; expected {expected}"
        ));
    }
    Ok(())
}

/// The content types a browser sends cross-origin without a preflight (the Fetch standard's
/// CORS-safelisted `Content-Type` values): the one refused, if the request has one.
pub fn simple_content_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let Ok(text) = value.to_str() else {
        return None;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
    )
    .then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::Hosts;

    fn hosts(bound: &str, allow: &[&str]) -> Hosts {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        Hosts::new(bound.parse().unwrap(), &allow).unwrap()
    }

    #[test]
    fn loopback_names_and_addresses_are_served_with_or_without_port() {
        let h = hosts("127.0.0.1", &[]);
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST:1",
            "localhost.",
            "console.localhost:8080",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.3.2.1:9",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1:8080",
            "[::2]:8080",
            "::1",
            "localhost:",
            "localhost:80a",
            "localhost:123456",
            "[::1]x",
            "",
            "local host",
            "host.docker.internal:8080",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn allowed_names_and_the_bound_address_are_served() {
        let h = hosts("0.0.0.0", &["host.docker.internal", "Box.LAN:8080"]);
        assert!(h.allows("host.docker.internal:8080"));
        assert!(h.allows("box.lan"));
        assert!(
            !h.allows("0.0.0.0:8080"),
            "0.0.0.0 is not an address to reach"
        );
        assert!(!h.allows("192.168.1.5:8080"));
        let h = hosts("192.168.1.5", &[]);
        assert!(h.allows("192.168.1.5:8080"));
        assert!(!h.allows("192.168.1.6:8080"));
        assert!(Hosts::new("127.0.0.1".parse().unwrap(), &["a/b".into()]).is_err());
    }

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    const SIG: &str = "55e16b31f9bde5fd04f9d3b780dd2b5e5f11a5219001f91a8ca9ec83eaf1618f";

    #[test]
    fn sdk_shaped_signatures_pass_and_others_are_named() {
        // aws-sigv4's layout (", " between parameters) and botocore's (the same), any key.
        let good = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261206/us-east-1/lambda/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={SIG}"
        );
        assert_eq!(sigv4(&auth(&good), "lambda"), Ok(()));
        assert!(
            sigv4(&auth(&good), "execute-api")
                .unwrap_err()
                .contains("Credential")
        );
        assert!(
            sigv4(&HeaderMap::new(), "lambda")
                .unwrap_err()
                .starts_with("no Authorization header")
        );
        for (bad, names) in [
            ("Bearer x", "AWS4-HMAC-SHA256"),
            (
                "AWS4-HMAC-SHA256 Credential=a/b/c/lambda/aws4_request, SignedHeaders=host, Signature=00",
                "Credential",
            ),
            (
                &format!(
                    "AWS4-HMAC-SHA256 Credential=a/20261206/r/lambda/aws4_request, SignedHeaders=x-amz-date, Signature={SIG}"
                ),
                "SignedHeaders",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=a/20261206/r/lambda/aws4_request, SignedHeaders=host, Signature=xyz",
                "Signature",
            ),
        ] {
            let err = sigv4(&auth(bad), "lambda").unwrap_err();
            assert!(err.contains(names), "{bad}: {err}");
        }
    }

    #[test]
    fn cors_simple_content_types_are_recognised() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            simple_content_type(&h)
        };
        assert_eq!(
            ct("text/plain;charset=UTF-8").as_deref(),
            Some("text/plain")
        );
        assert!(ct("Application/X-WWW-Form-Urlencoded").is_some());
        assert!(ct("multipart/form-data; boundary=x").is_some());
        assert_eq!(ct("application/json"), None);
        assert_eq!(ct("application/octet-stream"), None);
        assert_eq!(simple_content_type(&HeaderMap::new()), None);
    }
}
