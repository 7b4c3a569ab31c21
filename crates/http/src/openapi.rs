//! The OpenAPI document: the routes' own annotations, plus the security
//! scheme and the `Herald-Account` header that every authenticated
//! operation accepts, and the request schemas written by hand in
//! `herald_api_types::patterns` (what utoipa's model of a schema cannot
//! hold: `not`, `allOf` beside `properties`).

use utoipa::OpenApi;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Type};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", description = "Herald, a self-hosted email delivery platform. Authenticate with `Authorization: Bearer <api key>`; a master's key acts on one of its sub-accounts with `Herald-Account: <name>`. Errors are `{\"error\": {\"code\", \"message\"}}`."),
    components(schemas(
        herald_api_types::patterns::AccountName,
        herald_api_types::patterns::DnsName,
        herald_api_types::patterns::DomainName,
        herald_api_types::patterns::EmailAddress,
        herald_api_types::patterns::EmailAddressOrEmpty,
        herald_api_types::patterns::EventKind,
        herald_api_types::patterns::EventKinds,
        herald_api_types::patterns::HttpUrl,
        herald_api_types::patterns::HttpUrlOrEmpty,
        herald_api_types::patterns::MailboxText,
        herald_api_types::patterns::MessageId,
        herald_api_types::patterns::RawMessage,
        herald_api_types::patterns::SenderRule,
        herald_api_types::patterns::StreamName,
        herald_api_types::patterns::SuppressionCsv,
        herald_api_types::patterns::SuppressionReason,
        herald_api_types::patterns::Tag,
        herald_api_types::patterns::WebhookId,
        crate::routes::dmarc::ReportKindName,
        crate::routes::dmarc::TimeOrDate,
        crate::routes::stats::StatsBy,
        crate::routes::stats::StatsGroupName,
    )),
    tags((name = "accounts"), (name = "credentials"), (name = "domains"), (name = "messages"), (name = "events"), (name = "suppressions"), (name = "webhooks"), (name = "dmarc"), (name = "checks"), (name = "queue"), (name = "tracking"), (name = "system"))
)]
struct Doc;

fn account_header() -> Parameter {
    ParameterBuilder::new()
        .name("Herald-Account")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Act on this account (an account name) instead of the key's own: one of the key's sub-accounts, or any account for an admin key. Others answer 404.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))
                .build(),
        ))
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

/// The document as served: [`openapi`], with the schemas of
/// `herald_api_types::patterns::components` in place of utoipa's reading
/// of them.
pub fn openapi_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi()).unwrap_or_default();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(serde_json::Value::as_object_mut)
    {
        for (name, schema) in herald_api_types::patterns::components() {
            schemas.insert(name.to_owned(), schema);
        }
    }
    if let Some(paths) = doc.get_mut("paths").and_then(serde_json::Value::as_object_mut) {
        for op in paths
            .values_mut()
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|item| item.values_mut())
        {
            if let Some(content) = op
                .pointer_mut("/requestBody/content")
                .and_then(serde_json::Value::as_object_mut)
            {
                content.values_mut().for_each(body_may_be_absent);
            }
        }
    }
    doc
}

/// An optional body (`Option<T>`) is one that may be left out, not one
/// that may be `null`: utoipa writes `oneOf: [T, null]` and leaves
/// `required` out; the schema becomes `T`'s.
fn body_may_be_absent(media: &mut serde_json::Value) {
    let Some(schema) = media.get_mut("schema") else {
        return;
    };
    let inner = schema
        .get("oneOf")
        .and_then(serde_json::Value::as_array)
        .filter(|alternatives| alternatives.len() == 2)
        .filter(|alternatives| alternatives.iter().any(|a| a == &serde_json::json!({ "type": "null" })))
        .and_then(|alternatives| {
            alternatives
                .iter()
                .find(|a| a != &&serde_json::json!({ "type": "null" }))
        })
        .cloned();
    if let Some(inner) = inner {
        *schema = inner;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_document_holds_the_hand_written_schemas() {
        let doc = openapi_json();
        let send = &doc["components"]["schemas"]["SendMessage"];
        assert!(send["allOf"].is_array(), "{send}");
        let names: Vec<&str> = herald_api_types::patterns::components()
            .iter()
            .map(|(n, _)| *n)
            .collect();
        for name in names {
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let text = openapi_json().to_string();
        let doc = openapi_json();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn an_optional_body_may_be_left_out_but_is_never_null() {
        let doc = openapi_json();
        let body = &doc["paths"]["/api/v1/api-keys"]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{body}");
        assert_eq!(
            body["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CreateApiKey"
        );
    }
}
