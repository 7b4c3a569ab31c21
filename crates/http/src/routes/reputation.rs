//! `/api/v1/reputation`: the acting account's score and its IPs'.

use axum::Json;
use axum::extract::State;
use herald_api_types::{ErrorBody, IpReputation, Reputation, ReputationReason, ReputationScore};
use herald_events::reputation::{self, account_inputs};

use crate::AppState;
use crate::auth::Authed;
use crate::error::ApiResult;

fn view(r: &reputation::Reputation) -> ReputationScore {
    ReputationScore {
        score: r.score,
        reasons: r
            .reasons
            .iter()
            .map(|x| ReputationReason {
                factor: x.factor.to_owned(),
                value: x.value,
                threshold: x.threshold,
                impact: x.impact,
                message: x.message.clone(),
            })
            .collect(),
    }
}

/// A 0–100 score over the last 7 days with the reasons that lowered it
/// (unverified domains, bounce rate over 2%, complaint rate over 0.05%,
/// acceptance rate under 95%, unsteady volume), for the account and for
/// each IP it sent from.
#[utoipa::path(get, path = "/api/v1/reputation", tag = "events",
    responses((status = 200, body = Reputation), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reputation(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Json<Reputation>> {
    let store = s.accounts.store();
    let (account, ips) = account_inputs(store.as_ref(), &caller.account.id)
        .await
        .map_err(herald_accounts::AccountsError::from)?;
    Ok(Json(Reputation {
        account: caller.account.name.to_string(),
        reputation: view(&reputation::score(&account)),
        ips: ips
            .iter()
            .map(|(ip, inputs)| IpReputation {
                ip: ip.clone(),
                reputation: view(&reputation::score(inputs)),
            })
            .collect(),
    }))
}
