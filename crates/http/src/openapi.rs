//! The OpenAPI document: the routes' own annotations, plus the security
//! scheme and the `Herald-Account` header that every authenticated
//! operation accepts.

use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Object, Ref, RefOr, Required, ResponseBuilder, Type};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", description = "Herald, a self-hosted email delivery platform. Authenticate with `Authorization: Bearer <api key>`; a master's key acts on one of its sub-accounts with `Herald-Account: <name>`. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    tags((name = "accounts"), (name = "credentials"), (name = "domains"), (name = "messages"), (name = "events"), (name = "suppressions"), (name = "webhooks"), (name = "dmarc"), (name = "checks"), (name = "queue"), (name = "tracking"), (name = "system"))
)]
struct Doc;

fn account_header() -> Parameter {
    ParameterBuilder::new()
        .name("Herald-Account")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Act on this account instead of the key's own: one of the key's sub-accounts, or any account for an admin key. Others answer 404.",
        ))
        .schema(Some(Object::with_type(Type::String)))
        .build()
}

/// The answers every authenticated operation can give, whatever it does.
fn common_responses() -> [(&'static str, &'static str); 5] {
    [
        ("401", "missing, invalid or revoked API key"),
        (
            "403",
            "the key's account (or its master) is suspended, or the key may not do this",
        ),
        (
            "404",
            "not found, or not the caller's: the account named by Herald-Account or the object addressed",
        ),
        (
            "429",
            "too many failed authentications from this address; retry after Retry-After seconds",
        ),
        ("503", "storage temporarily unavailable; retry later"),
    ]
}

/// What any layer answers a malformed request, by what the operation takes.
fn request_responses(has_params: bool, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if has_params || has_body {
        out.push(("400", "a malformed path, query or JSON body"));
        out.push(("422", "a value is invalid; `field` names it when one is"));
    }
    if has_body {
        out.push(("413", "the body is larger than the operation takes"));
        out.push(("415", "the body is not of a type the operation takes"));
    }
    out
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The whole document, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = Doc::openapi();
    doc.merge(crate::routes::api(crate::MAX_BODY).into_openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        let shared_params = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        for op in ops.into_iter().flatten() {
            let has_params = shared_params || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let mut statuses = request_responses(has_params, has_body);
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                op.parameters
                    .get_or_insert_with(Vec::new)
                    .push(RefOr::T(account_header()));
                statuses.extend(common_responses());
                statuses.extend(request_responses(true, false));
            }
            for (status, description) in statuses {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            }
        }
    }
    doc
}
