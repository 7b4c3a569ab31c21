//! Who is calling: `Authorization: Bearer <key>`, and optionally
//! `Herald-Account: <name>` to act on one of the caller's sub-accounts.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use herald_accounts::Caller;

use crate::{ApiError, AppState};

/// The header a master's (or admin's) key uses to act on another account.
pub const ACCOUNT_HEADER: &str = "herald-account";

/// An authenticated request.
#[derive(Debug)]
pub struct Authed(pub Caller);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = crate::client_ip::of(parts);
        if let Some(wait) = peer.and_then(|ip| state.auth_failures.wait(&ip)) {
            return Err(ApiError::rate_limited(wait));
        }
        let failed = |e: herald_accounts::AccountsError| {
            if e == herald_accounts::AccountsError::Unauthenticated
                && let Some(ip) = peer
            {
                state.auth_failures.count(ip);
            }
            ApiError::from(e)
        };
        // No key at all is no guess: answered 401 without counting.
        let key = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let principal = state.accounts.authenticate_key(key).await.map_err(failed)?;
        let on_behalf = match parts.headers.get(ACCOUNT_HEADER) {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::invalid("Herald-Account is not valid text"))?,
            ),
            None => None,
        };
        let caller = state.accounts.caller(principal, on_behalf).await?;
        Ok(Self(caller))
    }
}
