//! `/api/v1/checks`: the DNS linter.

use axum::Json;
use axum::extract::State;
use herald_accounts::AccountsError;
use herald_api_types::ErrorBody;
use herald_api_types::checks::DnsReport;
use herald_types::DomainName;
use serde::Deserialize;

use super::{ApiPath, ApiQuery};
use crate::AppState;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DnsCheckQuery {
    /// DKIM selectors to check, comma-separated, beside the ones Herald
    /// manages for the domain (when it is the caller's).
    pub selectors: Option<String>,
}

/// Lint a domain's SPF (RFC 7208: syntax, the 10-lookup and 2-void-lookup
/// limits, `+all`, `ptr`, several records, size), DMARC (RFC 9989: syntax,
/// policy, rua/ruf and their external-destination authorisation), DKIM
/// (the selectors Herald manages and those given: key length, testing
/// mode) and MX (present, null MX) records on live DNS. Every finding has a
/// severity; no DMARC record is critical.
#[utoipa::path(get, path = "/api/v1/checks/dns/{domain}", tag = "checks",
    params(("domain" = herald_api_types::patterns::DnsName, Path, description = "the domain to check"), DnsCheckQuery),
    responses((status = 200, body = DnsReport), (status = 422, body = ErrorBody, description = "not a domain name")),
    security(("bearer" = [])))]
pub async fn dns(
    State(s): State<AppState>,
    Authed(caller): Authed,
    ApiPath(domain): ApiPath<String>,
    ApiQuery(q): ApiQuery<DnsCheckQuery>,
) -> ApiResult<Json<DnsReport>> {
    let resolver = s.resolver.as_ref().ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "DNS checks are not available in this process",
        )
    })?;
    let domain =
        herald_checks::normalize_domain(&domain).ok_or_else(|| ApiError::field("domain", "not a domain name"))?;
    let mut selectors: Vec<String> = q
        .selectors
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if let Ok(name) = DomainName::parse(&domain)
        && let Some(d) = s.accounts.store().domain(&name).await.map_err(AccountsError::from)?
        && (caller.admin || d.account == caller.account.id)
    {
        selectors.extend(d.published_selectors());
    }
    selectors.sort();
    selectors.dedup();
    Ok(Json(
        herald_checks::check_dns(resolver.as_ref(), &domain, &selectors).await,
    ))
}
