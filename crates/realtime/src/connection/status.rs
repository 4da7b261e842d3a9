//! `GET /api/v1/projects/{projectId}/ws/status`: who is connected to a project right now.
//!
//! `project_clients` and `user_ids` come from the project index (live items only);
//! `total_clients` is the store's [`approximate_total`](crate::connection::store::ConnectionStore::approximate_total)
//! (DynamoDB's `ItemCount`, refreshed about every six hours).

use std::collections::BTreeSet;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use futures::TryStreamExt;
use http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::connection::auth::{self, Authenticator};
use crate::connection::lifecycle::check_member;
use crate::connection::membership::Membership;
use crate::connection::store::Listings;
use crate::wire::client::{ErrorCode, ErrorFrame, Reply};

pub const ROUTE: &str = "GET /api/v1/projects/{projectId}/ws/status";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub total_clients: u64,
    pub project_clients: u64,
    /// Distinct users with a live connection to the project, sorted.
    pub user_ids: Vec<Uuid>,
}

/// Count the live subscribers of `project_id` and their distinct users, page by page.
pub async fn count_project(
    store: &(impl Listings + ?Sized),
    project_id: Uuid,
) -> Result<(u64, BTreeSet<Uuid>), crate::connection::store::StoreError> {
    store
        .project_subscribers(project_id)
        .try_fold(
            (0u64, BTreeSet::new()),
            |(mut n, mut users), page| async move {
                n += page.len() as u64;
                users.extend(page.into_iter().map(|s| s.user_id));
                Ok((n, users))
            },
        )
        .await
}

fn json_response(status: u16, body: String) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = i64::from(status);
    r.headers = headers;
    r.body = Some(Body::Text(body));
    r
}

/// Serve the status request: Bearer token of a member required.
pub async fn project_status(
    store: &(impl Listings + ?Sized),
    membership: &dyn Membership,
    authenticator: &Authenticator,
    request: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let project_param = request.path_parameters.get("projectId").map(String::as_str);
    match status(store, membership, authenticator, request, project_param).await {
        Ok(status) => json_response(
            200,
            serde_json::to_string(&status).expect("plain data serializes"),
        ),
        Err((user, error)) => {
            tracing::warn!(
                route = ROUTE,
                user_id = user.map(|u| u.to_string()),
                project_id = project_param,
                code = error.code.as_str(),
                reason = %error.message,
                "status refused"
            );
            json_response(error.code.http_status(), Reply::Error(error).to_json())
        }
    }
}

async fn status(
    store: &(impl Listings + ?Sized),
    membership: &dyn Membership,
    authenticator: &Authenticator,
    request: &ApiGatewayV2httpRequest,
    project_param: Option<&str>,
) -> Result<ProjectStatus, (Option<Uuid>, ErrorFrame)> {
    let token = auth::bearer_token(&request.headers);
    let user = match token {
        Ok(token) => authenticator
            .authenticate_current(token)
            .await
            .map(|i| i.user),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        (
            None,
            ErrorFrame::new(ErrorCode::Unauthorized, e.to_string()),
        )
    })?;
    let fail = |error: ErrorFrame| (Some(user), error);
    let project = project_param
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(|| {
            fail(ErrorFrame::new(
                ErrorCode::BadRequest,
                "projectId must be a UUID",
            ))
        })?;
    check_member(membership, project, user)
        .await
        .map_err(fail)?;
    let unavailable = |e: crate::connection::store::StoreError| {
        tracing::error!(route = ROUTE, project_id = %project, error = %e, "status: store failed");
        fail(ErrorFrame::new(
            ErrorCode::Unavailable,
            "connection store unavailable",
        ))
    };
    let (project_clients, users) = count_project(store, project).await.map_err(unavailable)?;
    let total_clients = store.approximate_total().await.map_err(unavailable)?;
    tracing::info!(route = ROUTE, user_id = %user, project_id = %project, project_clients, "status");
    Ok(ProjectStatus {
        total_clients,
        project_clients,
        user_ids: users.into_iter().collect(),
    })
}
