//! The dev console and dev tokens: `GET /` in a browser is a page built on the web client
//! (`clients/web`) that picks a user, subscribes to a project, shows events as they arrive and
//! sends test broadcasts. The page and the built client are read from `clients/web` when asked
//! for, so editing them needs no rebuild of the server. Anyone who can read a minted token can
//! act as any user, so tokens are minted only while the server listens on a loopback address,
//! only under the development secret (unless `--console-tokens-any-secret`), and only for the
//! console's own page or a caller that is not a web page: a request with a foreign `Origin`
//! (or a browser's `Sec-Fetch-Site` saying another site sent it) is refused.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use realtime::connection::auth;
use serde::Deserialize;
use uuid::Uuid;

use crate::state::App;

/// Default and longest lifetime of a console token.
pub const DEFAULT_TOKEN_TTL_S: u64 = 3600;
pub const MAX_TOKEN_TTL_S: u64 = 24 * 3600;
/// The built client, as the page imports it.
pub const CLIENT_FILE: &str = "realtime.js";

/// Why no token is minted while the server listens beyond loopback.
pub const NOT_LOOPBACK: &str = "dev tokens are minted only when the dev server listens on a \
     loopback address (--addr 127.0.0.1:…); use `devhive-realtime token --user <uuid>` instead";
/// Why no token is minted under another secret than the development one.
pub const NOT_DEV_SECRET: &str = "dev tokens are minted only under the development secret, and \
     JWT_SECRET is set to another one (a token minted here would be valid wherever that secret \
     is): unset JWT_SECRET, start the dev server with --console-tokens-any-secret \
     (DEVHIVE_CONSOLE_TOKENS_ANY_SECRET=true), or use `devhive-realtime token --user <uuid>`";

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [("content-type", "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A file name the console may serve: one path segment of plain characters, so no request
/// reaches outside the console's folder.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

async fn file(path: &Path, missing: &str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            (
                StatusCode::OK,
                [
                    ("content-type", content_type(name)),
                    ("cache-control", "no-store"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            text(StatusCode::NOT_FOUND, missing)
        }
        Err(error) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {}: {error}", path.display()),
        ),
    }
}

/// `GET /` without an upgrade: the console page.
pub async fn page(app: &App) -> Response {
    let path = app.console.web_dir.join("console").join("index.html");
    file(
        &path,
        &format!(
            "This is the DevHive Realtime dev server: WebSocket clients connect here. The dev console \
             page is missing ({}).",
            path.display()
        ),
    )
    .await
}

/// `GET /console/{name}`: the page's files, and `realtime.js`, the built web client.
pub async fn asset(State(app): State<Arc<App>>, UrlPath(name): UrlPath<String>) -> Response {
    if !plain_name(&name) {
        return text(StatusCode::NOT_FOUND, "no such console file");
    }
    let dir = &app.console.web_dir;
    if name == CLIENT_FILE {
        return file(
            &dir.join("dist").join("index.js"),
            "The web client is not built: run `npm --prefix clients/web ci && npm --prefix clients/web run build` \
             (`make dev` does it when npm is installed), then reload.",
        )
        .await;
    }
    file(&dir.join("console").join(&name), "no such console file").await
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    user_id: Option<String>,
    ttl_s: Option<String>,
}

/// Why a request for a token comes from a web page other than the console's, if it does: its
/// `Origin` is not `http://` or `https://` and the `Host` it was sent to (same-origin fetches of a GET send
/// none, other tools none either), or its `Sec-Fetch-Site` (sent by browsers even where
/// `Origin` is not) is neither `same-origin` nor `none` (typed into the address bar).
pub fn foreign_page(headers: &HeaderMap) -> Option<String> {
    let header = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    if let Some(origin) = header(http::header::ORIGIN) {
        // The page's own origin: this Host, over HTTP or (with TLS) HTTPS.
        let own = header(http::header::HOST).is_some_and(|host| {
            let origin = origin.trim_end_matches('/');
            ["http://", "https://"].iter().any(|scheme| {
                origin
                    .strip_prefix(scheme)
                    .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
            })
        });
        if !own {
            return Some(format!("Origin {origin:?}"));
        }
    }
    match header(http::HeaderName::from_static("sec-fetch-site")) {
        None | Some("same-origin" | "none") => None,
        Some(site) => Some(format!("Sec-Fetch-Site {site:?}")),
    }
}

/// `GET /console/token?user_id=<uuid>&ttl_s=<s>`: a token for that user (a random one when
/// absent), `{"token","user_id","exp"}`; 403 for another page than the console's, off
/// loopback, or under another secret than the development one (see the module's comment).
pub async fn token(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    if let Some(page) = foreign_page(&headers) {
        tracing::warn!(%page, "refused a console token to another page");
        return text(
            StatusCode::FORBIDDEN,
            format!(
                "dev tokens are given only to the dev console's own page (or to callers that are \
                 not web pages, such as curl), not to a request with {page}"
            ),
        );
    }
    let jwt = match &app.console.minting {
        Ok(jwt) => jwt,
        Err(why) => return text(StatusCode::FORBIDDEN, why.clone()),
    };
    let user = match query.user_id.as_deref().filter(|u| !u.is_empty()) {
        None => Uuid::new_v4(),
        Some(u) => match Uuid::parse_str(u) {
            Ok(user) => user,
            Err(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("user_id must be a UUID, got {u:?}"),
                );
            }
        },
    };
    let ttl = match query.ttl_s.as_deref() {
        None | Some("") => DEFAULT_TOKEN_TTL_S,
        Some(s) => match s.parse::<u64>() {
            Ok(ttl) if (1..=MAX_TOKEN_TTL_S).contains(&ttl) => ttl,
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "ttl_s must be a number of seconds from 1 to {MAX_TOKEN_TTL_S}, got {s:?}"
                    ),
                );
            }
        },
    };
    let token = auth::mint(jwt, user, ttl);
    let exp = realtime::time::EpochSecs::now().plus_secs(ttl as i64);
    axum::Json(serde_json::json!({ "token": token, "user_id": user, "exp": exp.0 })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_served() {
        for ok in ["index.html", "console.js", "a-b_c.css"] {
            assert!(plain_name(ok), "{ok}");
        }
        for bad in ["", "..", ".env", "../Cargo.toml", "a/b", "a%2fb", "x y"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_consoles_own_origin_or_none_may_ask_for_tokens() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            foreign_page(&h)
        };
        assert_eq!(h(&[("host", "127.0.0.1:8080")]), None);
        assert_eq!(
            h(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            None
        );
        assert_eq!(
            h(&[
                ("host", "localhost:8080"),
                ("sec-fetch-site", "same-origin")
            ]),
            None
        );
        for bad in [
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "https://evil.example"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://localhost:8080"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:5173"),
            ],
            vec![("host", "127.0.0.1:8080"), ("origin", "null")],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "ftp://127.0.0.1:8080"),
            ],
            vec![
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080.evil.example"),
            ],
            vec![("origin", "http://127.0.0.1:8080")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "cross-site")],
            vec![("host", "127.0.0.1:8080"), ("sec-fetch-site", "same-site")],
        ] {
            assert!(h(&bad).is_some(), "{bad:?}");
        }
    }
}
