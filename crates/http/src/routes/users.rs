//! The acting account's dashboard users. A master's key reaches a sub's
//! with `Herald-Account: <sub>`; only an admin key makes operator users.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_api_types::{CreateUser, CreatedUser, ErrorBody, List, User};

use super::{ApiJson, ApiPath};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::{AppState, views};

/// List the account's dashboard users; never their passwords.
#[utoipa::path(get, path = "/api/v1/users", tag = "credentials",
    responses((status = 200, body = List<User>), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<List<User>>> {
    let users = s.accounts.list_users(&caller).await?;
    let name = caller.account.name.to_string();
    Ok(Json(List {
        data: users.iter().map(|u| views::user(u, &name)).collect(),
    }))
}

/// Create a dashboard user (sign-in at `/login`). Without a password Herald
/// chooses one, in this answer only.
#[utoipa::path(post, path = "/api/v1/users", tag = "credentials", request_body = CreateUser,
    responses((status = 201, body = CreatedUser), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<CreatedUser>)> {
    let created = s
        .accounts
        .create_user(&caller, &req.email, req.password, req.operator)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedUser {
            password: created.password,
            record: views::user(&created.user, caller.account.name.as_str()),
        }),
    ))
}

/// Delete a dashboard user (by id or e-mail address); its sessions end.
#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "credentials",
    params(("id" = String, Path, description = "user id (usr_…) or e-mail address")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<User>> {
    let user = s.accounts.delete_user(&caller, &id).await?;
    Ok(Json(views::user(&user, caller.account.name.as_str())))
}
