//! The answer to a path nothing serves, shared by the router's fallback and the WebSocket
//! endpoint (a plain `GET` on a path that only upgrades): 404 naming what is served.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::App;

/// Any other path: 404, saying what is served.
pub async fn not_found(State(app): State<Arc<App>>, uri: axum::http::Uri) -> Response {
    let stage = &app.options.stage;
    (
        StatusCode::NOT_FOUND,
        format!(
            "{} is not served here. WebSocket: /, /{stage}, /api/v1/messages/ws; Management API: \
             /@connections/ID, /{stage}/@connections/ID; status: /api/v1/projects/PROJECT/ws/status; \
             Invoke API: /2015-03-31/functions/NAME/invocations; dev console: /\n",
            uri.path()
        ),
    )
        .into_response()
}
