//! What every route shares: API Gateway's route keys, the response shapes (a reply frame, a
//! refusal with its HTTP status), the refusal of an event of another route, and the checks
//! more than one route makes (membership, a project id, a store failure as an error frame).

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;
use uuid::Uuid;

use crate::connection::membership::Membership;
use crate::connection::store::StoreError;
use crate::wire::client::{ErrorCode, ErrorFrame, Reply};

/// Route keys, as API Gateway names them.
pub const ROUTE_CONNECT: &str = "$connect";
pub const ROUTE_DISCONNECT: &str = "$disconnect";
pub const ROUTE_DEFAULT: &str = "$default";

/// A response with `status` and a JSON `body`.
pub fn response(status: u16, body: String) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = i64::from(status);
    r.body = Some(Body::Text(body));
    r
}

/// A reply frame as the route response.
pub(super) fn reply(message: Reply) -> ApiGatewayProxyResponse {
    response(200, message.to_json())
}

/// A refusal: the error frame with its HTTP status (what `$connect` answers before the upgrade).
pub(super) fn refuse(error: ErrorFrame) -> ApiGatewayProxyResponse {
    response(error.code.http_status(), Reply::Error(error).to_json())
}

/// Whether the membership port lets `user` into `project`, as an error frame when it does not.
pub async fn check_member(
    membership: &dyn Membership,
    project: Uuid,
    user: Uuid,
) -> Result<(), ErrorFrame> {
    match membership.is_member(project, user).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ErrorFrame::new(
            ErrorCode::Forbidden,
            "not a member of this project",
        )),
        Err(e) => {
            tracing::error!(project_id = %project, user_id = %user, error = %e, "membership check failed; denying");
            Err(ErrorFrame::new(
                ErrorCode::Unavailable,
                "membership cannot be checked right now",
            ))
        }
    }
}

/// A store failure as the error frame a client gets.
pub(super) fn store_unavailable(e: StoreError) -> ErrorFrame {
    match e {
        StoreError::NotFound => ErrorFrame::new(ErrorCode::NotFound, "connection is closed"),
        StoreError::Unavailable(_) => {
            ErrorFrame::new(ErrorCode::Unavailable, "connection store unavailable")
        }
    }
}

/// A project id given as text.
pub(super) fn parse_project(value: &str) -> Result<Uuid, ErrorFrame> {
    Uuid::parse_str(value)
        .map_err(|_| ErrorFrame::new(ErrorCode::BadRequest, "project_id must be a UUID"))
}

/// Refuse an event of a route this function does not serve (a `$disconnect` event given to
/// `subscribe`, say), naming both. An event without a route key is taken as the expected one.
pub(super) fn serves(routes: &[&str], route: Option<&str>) -> Result<(), ErrorFrame> {
    match route {
        Some(r) if !routes.contains(&r) => Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            format!(
                "this function serves the {} route{}, not {r}: check the API's integrations",
                routes.join(", "),
                if routes.len() > 1 { "s" } else { "" }
            ),
        )),
        _ => Ok(()),
    }
}

/// The message routes: everything but `$connect` and `$disconnect`.
pub(super) fn serves_messages(route: Option<&str>) -> Result<(), ErrorFrame> {
    match route {
        Some(r @ (ROUTE_CONNECT | ROUTE_DISCONNECT)) => Err(ErrorFrame::new(
            ErrorCode::BadRequest,
            format!(
                "this function serves the message routes ({}, {ROUTE_DEFAULT}), not {r}: check the API's integrations",
                crate::wire::client::MESSAGE_ROUTES.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}
