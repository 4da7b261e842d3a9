//! The dev console and dev tokens: `GET /` in a browser is a page built on the web client
//! (`clients/web`) that picks a user, subscribes to a project, shows events as they arrive and
//! sends test broadcasts. The page and the built client are read from `clients/web` when asked
//! for, so editing them needs no rebuild of the server. Tokens are minted only while the server
//! listens on a loopback address: anyone who can reach the endpoint can act as any user.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use realtime::connection::auth::{self, JwtConfig};
use serde::Deserialize;
use uuid::Uuid;

use crate::state::App;

/// Where the page and the client live unless `--web-dir` says otherwise: the repository's
/// `clients/web`, as the dev server runs from a checkout.
pub const DEFAULT_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/web");
/// Default and longest lifetime of a console token.
pub const DEFAULT_TOKEN_TTL_S: u64 = 3600;
pub const MAX_TOKEN_TTL_S: u64 = 24 * 3600;
/// The built client, as the page imports it.
pub const CLIENT_FILE: &str = "realtime.js";

/// What the console needs from the server: where its files are, and the key to mint tokens
/// with (none when the server listens beyond loopback).
#[derive(Clone)]
pub struct Console {
    pub web_dir: PathBuf,
    pub minting: Option<JwtConfig>,
}

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

/// `GET /console/token?user_id=<uuid>&ttl_s=<s>`: a token for that user (a random one when
/// absent), `{"token","user_id","exp"}`.
pub async fn token(State(app): State<Arc<App>>, Query(query): Query<TokenQuery>) -> Response {
    let Some(jwt) = &app.console.minting else {
        return text(
            StatusCode::FORBIDDEN,
            "dev tokens are minted only when the dev server listens on a loopback address \
             (--addr 127.0.0.1:…); use `devhive-realtime token --user <uuid>` instead",
        );
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
    let exp = realtime::epoch_millis() / 1000 + ttl as i64;
    axum::Json(serde_json::json!({ "token": token, "user_id": user, "exp": exp })).into_response()
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
}
