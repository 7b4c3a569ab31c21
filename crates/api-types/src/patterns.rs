//! What the server accepts in a request value, as JSON Schema: the
//! documented form of the rules `herald-types` and the handlers enforce, so
//! a client (or a test generator) that keeps to the document is never
//! refused, and a value outside it is.
//!
//! Main design decision: every pattern is a subset of what the server takes
//! (a value matching it is always accepted), and as close to it as a
//! regular expression without look-around can be. Limits the server counts
//! in octets are kept by the patterns' own shape: ASCII forms up to the
//! limit in characters, forms with other characters short enough that four
//! octets a character still fit. The patterns are read by ECMA-262 and by
//! Python's `re` alike: no `\p{..}`, no `\u{..}`, no flags, no look-around.
//!
//! Each type here is a schema only (`value_type = ...` in a derive, or a
//! parameter's type); the Rust values stay `String`s, checked by their
//! parsers.

use utoipa::openapi::{RefOr, Schema};

/// Unicode White_Space, as `str::trim` takes it off, less CR and LF.
const SPACE: &str = r"\t\x0b\x0c \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Neither white space (as `str::trim` sees it) nor a control character.
const VISIBLE: &str = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// A DNS label of ASCII letters, digits and hyphens, up to 63.
const LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
/// The same, up to 20 (twelve of them fit in 255 octets).
const SHORT_LABEL: &str = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,18}[A-Za-z0-9])?";
/// A label's first and last character when non-ASCII is allowed: a letter,
/// a digit or anything beyond ASCII.
const INTL_END: &str = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]";
/// The same, or a hyphen.
const INTL_MID: &str = r"[^\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]";

/// [`INTL_END`] but white space (which a trimmed value cannot end with).
const INTL_END_VISIBLE: &str =
    r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// An internationalised label of up to 15 characters (60 octets).
fn intl_label() -> String {
    format!("{INTL_END}(?:{INTL_MID}{{0,13}}{INTL_END})?")
}

/// The same, not ending in white space.
fn intl_last_label() -> String {
    format!("(?:{INTL_END}{INTL_MID}{{0,13}})?{INTL_END_VISIBLE}")
}

/// A domain name as `DomainName::parse` takes it, with `maxLength: 255`:
/// ASCII labels of up to 63, or up to four labels of up to 15 characters
/// of any script (and then an optional final dot).
pub fn domain() -> String {
    let i = intl_label();
    format!(r"(?:{LABEL}(?:\.{LABEL})*|{i}(?:\.{i}){{0,3}}\.?)")
}

/// A domain name whose shape keeps it within 255 octets, for use inside a
/// longer value: up to four ASCII labels of up to 63, up to twelve of up to
/// 20, or up to four of any script of up to 15 (the last not ending in
/// white space, which trimming would take off); an optional final dot.
pub fn bounded_domain() -> String {
    let (i, last) = (intl_label(), intl_last_label());
    format!(r"(?:{LABEL}(?:\.{LABEL}){{0,3}}|{SHORT_LABEL}(?:\.{SHORT_LABEL}){{4,11}}|(?:{i}\.){{0,3}}{last})\.?")
}

/// `atext` of RFC 5322.
const ATEXT: &str = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
/// `atext`, or any non-ASCII character but a control (RFC 6531) or white
/// space (which trimming would take off the ends).
const UTEXT: &str = r#"[^\x00-\x20"(),.:;<>@\[\\\]\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"#;

/// A dot-atom local part within 64 octets: one ASCII atom of up to 64, two
/// to four ASCII atoms (16 and 15 each), or up to 16 characters of any
/// script in one or two atoms.
fn local_part() -> String {
    format!(
        r"(?:{ATEXT}{{1,64}}|{ATEXT}{{1,16}}(?:\.{ATEXT}{{1,15}}){{1,3}}|{UTEXT}{{1,16}}|{UTEXT}{{1,7}}\.{UTEXT}{{1,8}})"
    )
}

/// An address `local@domain` as `EmailAddress::parse` takes it.
pub fn address() -> String {
    format!("{}@{}", local_part(), bounded_domain())
}

/// A plain address in the forms every mail parser reads alike (the text
/// forms of the send API go through the same parser as a From field).
fn plain_address() -> String {
    format!(r"[A-Za-z0-9_+-]{{1,32}}(?:\.[A-Za-z0-9_+-]{{1,15}}){{0,2}}@{LABEL}(?:\.{LABEL}){{0,3}}")
}

/// A display name of plain words.
const PLAIN_NAME: &str = "[A-Za-z0-9]{1,20}(?: [A-Za-z0-9]{1,20}){0,3}";

/// `jane@example.net` or `Jane Doe <jane@example.net>`.
fn mailbox_text() -> String {
    let a = plain_address();
    format!("(?:{a}|{PLAIN_NAME} <{a}>)")
}

/// A DNS name the linter checks: two or more ASCII labels (`_` allowed).
const DNS_LABEL: &str = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";

/// The event types, by name.
fn event_kinds() -> Vec<&'static str> {
    herald_types::EventKind::ALL.iter().map(|k| k.as_str()).collect()
}

/// Headers the send request's own fields set, or that only Herald writes
/// (lower case): the send API refuses them in `headers`.
pub const RESERVED_HEADERS: [&str; 16] = [
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "dkim-signature",
    "received",
    "return-path",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

/// `word` in any case: `[Ff][Rr][Oo][Mm]`.
fn any_case(word: &str) -> String {
    word.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A schema written as JSON. The values below are constants of this crate,
/// checked by its tests.
fn schema(json: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(json).expect("a schema of this crate")
}

/// `#/components/schemas/<name>`.
pub(crate) fn reference(name: &str) -> serde_json::Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A string type whose schema is the JSON given (see [`components`]).
macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident => $json:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl $name {
            /// This schema, as JSON.
            pub fn json() -> serde_json::Value {
                $json
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                schema(Self::json())
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

string_schema! {
    /// A domain name (`DomainName`).
    DomainName => serde_json::json!({
        "type": "string",
        "description": "A domain name: dot-separated labels of letters, digits and hyphens (no label starts or ends with one) or non-ASCII characters, at most 63 octets a label and 255 in all.",
        "pattern": format!("^{}$", domain()),
        "maxLength": 255,
        "example": "acme.com",
    })
}

string_schema! {
    /// A mail address (`EmailAddress`).
    EmailAddress => serde_json::json!({
        "type": "string",
        "description": "An address local@domain: a dot-atom local part (RFC 5322 atext, or non-ASCII) of at most 64 octets, and a domain name. White space around it is ignored.",
        "pattern": format!("^[{SPACE}]*{}[{SPACE}]*$", address()),
        "example": "jane@example.net",
    })
}

string_schema! {
    /// An approved sender rule (`SenderRule`).
    SenderRule => serde_json::json!({
        "type": "string",
        "description": "An exact address, or `@domain` for every address at that domain.",
        "pattern": format!("^(?:{}|@{})$", address(), bounded_domain()),
        "example": "billing@acme.com",
    })
}

string_schema! {
    /// A mailbox as text: `jane@example.net` or `Jane Doe <jane@example.net>`.
    MailboxText => serde_json::json!({
        "type": "string",
        "description": "`jane@example.net` or `Jane Doe <jane@example.net>`, read as a From field is. (The object form takes any address and display name.)",
        "pattern": format!("^{}$", mailbox_text()),
        "example": "Jane Doe <jane@example.net>",
    })
}

string_schema! {
    /// An account name (`AccountName`; upper case is folded).
    AccountName => serde_json::json!({
        "type": "string",
        "description": "1 to 63 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit (upper case is folded to lower).",
        "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
        "example": "acme-eu",
    })
}

string_schema! {
    /// A message id (`MessageId`).
    MessageId => serde_json::json!({
        "type": "string",
        "description": "`msg_` and 32 hexadecimal digits.",
        "pattern": "^msg_[0-9a-fA-F]{32}$",
        "example": "msg_0190f0b8a1c27d3e8f00112233445566",
    })
}

string_schema! {
    /// A webhook id (`WebhookId`).
    WebhookId => serde_json::json!({
        "type": "string",
        "description": "`whk_` and 32 hexadecimal digits.",
        "pattern": "^whk_[0-9a-fA-F]{32}$",
        "example": "whk_0190f0b8a1c27d3e8f00112233445566",
    })
}

string_schema! {
    /// An alert id (`AlertId`).
    AlertId => serde_json::json!({
        "type": "string",
        "description": "`alr_` and 32 hexadecimal digits.",
        "pattern": "^alr_[0-9a-fA-F]{32}$",
        "example": "alr_0190f0b8a1c27d3e8f00112233445566",
    })
}

string_schema! {
    /// What a blocklist check takes: an address, a network or a domain.
    BlocklistTarget => serde_json::json!({
        "type": "string",
        "description": "An IPv4 address, an IPv4 network in CIDR notation (the '/' written %2F in a path), an IPv6 address or network, or a domain name.",
        "pattern": format!(r"^(?:{IP4}(?:/(?:3[0-2]|[12]?[0-9]))?|{DNS_LABEL}(?:\.{DNS_LABEL})+)$"),
        "maxLength": 253,
        "example": "192.0.2.10",
    })
}

string_schema! {
    /// A stream name.
    StreamName => serde_json::json!({
        "type": "string",
        "description": "1 to 32 of a-z, 0-9, '-', '_'.",
        "pattern": "^[a-z0-9_-]{1,32}$",
        "example": "transactional",
    })
}

string_schema! {
    /// A tag of a message.
    Tag => serde_json::json!({
        "type": "string",
        "description": "1 to 128 octets of text without control characters, not only white space (outer white space is trimmed).",
        "pattern": format!("^(?:[!-~](?:[ -~]{{0,126}}[!-~])?|{VISIBLE}(?:[^\\x00-\\x1f\\x7f-\\x9f]{{0,30}}{VISIBLE})?)$"),
        "example": "welcome",
    })
}

string_schema! {
    /// An event type.
    EventKind => serde_json::json!({
        "type": "string",
        "enum": event_kinds(),
    })
}

string_schema! {
    /// A comma-separated list of event types.
    EventKinds => serde_json::json!({
        "type": "string",
        "description": format!("Event types, comma-separated: {}. Empty items are skipped; spaces around a type are ignored (an item of spaces only is refused).", event_kinds().join(", ")),
        "pattern": format!("^(?: *(?:{k}) *)?(?:,(?: *(?:{k}) *)?)*$", k = event_kinds().join("|")),
        "example": "bounced,deferred",
    })
}

string_schema! {
    /// A domain name the DNS linter checks.
    DnsName => serde_json::json!({
        "type": "string",
        "description": "A DNS name of two or more labels of ASCII letters, digits, '_' and '-' (no label starts or ends with '-'), at most 63 a label and 253 in all.",
        "pattern": format!(r"^{DNS_LABEL}(?:\.{DNS_LABEL})+$"),
        "maxLength": 253,
        "example": "acme.com",
    })
}

string_schema! {
    /// A suppression reason.
    SuppressionReason => serde_json::json!({
        "type": "string",
        "description": "Free text of up to 256 characters without control characters such as line breaks (outer white space is trimmed; empty means `manual`).",
        "pattern": format!("^[{SPACE}]*[^\\x00-\\x1f\\x7f-\\x9f]{{0,256}}[{SPACE}]*$"),
        "example": "asked by phone",
    })
}

/// A port number, 0 to 65535.
const PORT: &str = "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";

/// An http(s) URL with a host name (or IPv4 address), an optional port and
/// an optional path, query or fragment of printable ASCII.
fn http_url() -> String {
    format!(r"[Hh][Tt][Tt][Pp][Ss]?://{LABEL}(?:\.{LABEL})*(?::{PORT})?(?:[/?#][!-~]{{0,1700}})?")
}

string_schema! {
    /// An http(s) URL Herald calls.
    HttpUrl => serde_json::json!({
        "type": "string",
        "description": "An http:// or https:// URL of at most 2048 characters, without user or password, whose host is (or resolves to) a public address.",
        "pattern": format!("^{}$", http_url()),
        "maxLength": 2048,
        "example": "https://hooks.acme.com/herald",
    })
}

string_schema! {
    /// An address, or nothing (to clear a setting).
    EmailAddressOrEmpty => serde_json::json!({
        "type": "string",
        "description": "An address (as `EmailAddress`), or empty (or white space) to clear the setting.",
        "pattern": format!("^(?:[{SPACE}\\r\\n]*|{})$", address()),
        "example": "replies@acme.com",
    })
}

string_schema! {
    /// An http(s) URL, or nothing (to clear a setting).
    HttpUrlOrEmpty => serde_json::json!({
        "type": "string",
        "description": "An http:// or https:// URL (as `HttpUrl`), or empty (or white space) to clear the setting.",
        "pattern": format!("^(?:[{SPACE}\\r\\n]*|{})$", http_url()),
        "maxLength": 2048,
        "example": "https://hooks.acme.com/replies",
    })
}

/// A suppression CSV: an optional BOM, blank lines anywhere, an optional
/// header naming the address column (and a reason), then rows of an
/// address and an optional reason.
fn suppression_csv() -> String {
    let blank = format!("[{SPACE}\\r]*");
    let header = "(?:address|email)(?:,reason)?\\r?";
    let row = format!(
        "{},[^,\"\\x00-\\x1f\\x7f-\\x9f]{{0,256}}\\r?|{}\\r?",
        address(),
        address()
    );
    format!("^\\ufeff?(?:{blank}\\n)*(?:(?:{header}|{row})(?:\\n(?:{blank}|{row}))*|{blank})$")
}

string_schema! {
    /// A suppression list as CSV.
    SuppressionCsv => serde_json::json!({
        "type": "string",
        "description": "CSV (RFC 4180): a header naming an `address` (or `email`, `email_address`, `recipient`) column and optionally `reason`, or one address per line with an optional reason after a comma. Blank lines are skipped. A reason is free text of up to 256 characters without control characters. Each line that is not one (no address, not an address, a bad reason, not CSV) is reported by number and skipped, unless `strict`.",
        "pattern": suppression_csv(),
        "example": "address,reason\njane@example.net,manual\n",
    })
}

string_schema! {
    /// A complete message for the send API's `raw`.
    RawMessage => serde_json::json!({
        "type": "string",
        "description": "A complete RFC 5322 message: header fields (a From that parses to addresses, no bare CR, no NUL), a blank line, the body. Lines may end in LF or CRLF.",
        "pattern": format!(r"^From: {}\r?\n(?:X-[A-Za-z0-9-]{{1,30}}: [ -~]{{0,200}}\r?\n){{0,5}}\r?\n[ -~\t\r\n]{{0,2000}}$", mailbox_text()),
        "example": "From: Acme <news@acme.com>\nTo: jane@example.net\nSubject: Hello\n\nHi Jane\n",
    })
}

/// Text without CR or LF (one header line's worth).
fn one_line() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": "^[^\\r\\n]*$" })
}

/// A recipient or mailbox object.
fn mailbox_object(description: &str, substitutions: Option<serde_json::Value>) -> serde_json::Value {
    let mut properties = serde_json::json!({
        "email": reference("EmailAddress"),
        "name": {
            "type": ["string", "null"],
            "pattern": "^[^\\r\\n]*$",
            "description": "The display name; no line breaks.",
            "example": "Jane Doe",
        },
    });
    if let Some(s) = substitutions {
        properties["substitutions"] = s;
    }
    serde_json::json!({
        "type": "object",
        "description": description,
        "required": ["email"],
        "properties": properties,
    })
}

/// [`crate::MailboxInput`].
pub fn mailbox_input() -> serde_json::Value {
    serde_json::json!({
        "description": "An address, as `\"jane@example.net\"`, `\"Jane Doe <jane@example.net>\"` or `{\"email\": \"jane@example.net\", \"name\": \"Jane Doe\"}`.",
        "oneOf": [reference("MailboxText"), mailbox_object("An address and its display name.", None)],
    })
}

/// [`crate::RecipientInput`].
pub fn recipient_input() -> serde_json::Value {
    let substitutions = serde_json::json!({
        "type": "object",
        "description": "Values for `{{key}}` in the subject and bodies of this recipient's copy; no line breaks (the subject may use them).",
        "additionalProperties": one_line(),
        "example": { "first_name": "Jane" },
    });
    serde_json::json!({
        "description": "A recipient. `substitutions` fill `{{key}}` in the subject and bodies of this recipient's copy only; a message with any (in `to`) gets one copy per `to` recipient, each addressed to that recipient alone.",
        "oneOf": [
            reference("MailboxText"),
            mailbox_object("An address, its display name and its substitutions.", Some(substitutions)),
        ],
    })
}

/// A [`crate::RecipientInput`] without substitutions: a message with
/// none is one message for all its recipients.
pub fn plain_recipient() -> serde_json::Value {
    serde_json::json!({
        "description": "A recipient without substitutions (or with none).",
        "oneOf": [
            reference("MailboxText"),
            mailbox_object(
                "An address and its display name.",
                Some(serde_json::json!({ "type": "object", "maxProperties": 0 })),
            ),
        ],
    })
}

/// Canonical base64 with padding (`A-Z a-z 0-9 + /`).
const BASE64: &str = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?$";

/// [`crate::AttachmentInput`].
pub fn attachment_input() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "description": "A file attached to the message.",
        "additionalProperties": false,
        "required": ["filename", "content"],
        "properties": {
            "filename": {
                "type": "string",
                "description": "Not blank; no line breaks.",
                "pattern": format!("^[^\\r\\n]*{VISIBLE}[^\\r\\n]*$"),
                "example": "invoice.pdf",
            },
            "content_type": {
                "type": ["string", "null"],
                "description": "`type/subtype`, printable ASCII. Defaults to `application/octet-stream`.",
                "pattern": "^[!-.0-~]+/[!-~]+$",
                "example": "application/pdf",
            },
            "content": {
                "type": "string",
                "description": "The file, base64-encoded with padding (line breaks in it are tolerated).",
                "contentEncoding": "base64",
                "pattern": BASE64,
                "example": "JVBERi0xLjQK",
            },
        },
    })
}

/// [`crate::SendMessage`]: its properties, and (in `allOf`) the rules that
/// tie them: a message is built from its parts or given raw; someone
/// receives it; substitutions rule out `cc` and `bcc`.
pub fn send_message() -> serde_json::Value {
    let recipients = |description: &str| {
        serde_json::json!({
            "type": "array",
            "description": description,
            "items": reference("RecipientInput"),
            "maxItems": 1000,
        })
    };
    let nullable = |name: &str, description: &str| serde_json::json!({ "description": description, "oneOf": [reference(name), { "type": "null" }] });
    let plain_to = serde_json::json!({ "type": "array", "items": reference("PlainRecipient") });
    let none = serde_json::json!({ "type": "array", "maxItems": 0 });
    let reserved = RESERVED_HEADERS
        .iter()
        .map(|h| any_case(h))
        .collect::<Vec<_>>()
        .join("|");
    let built = serde_json::json!({
        "title": "built from its parts",
        "description": "`from`, `subject`, and `text`, `html` or both; with substitutions (in `to`), no `cc` or `bcc`, as each `to` recipient gets a copy of their own.",
        "required": ["from", "subject"],
        "properties": {
            "from": reference("MailboxInput"),
            "subject": { "type": "string" },
            "raw": { "type": "null" },
        },
        "allOf": [
            {
                "anyOf": [
                    { "required": ["text"], "properties": { "text": { "type": "string" } } },
                    { "required": ["html"], "properties": { "html": { "type": "string" } } },
                ],
            },
            {
                "anyOf": [
                    { "properties": { "to": plain_to } },
                    { "properties": { "cc": none, "bcc": none } },
                ],
            },
        ],
    });
    let raw = serde_json::json!({
        "title": "given whole",
        "description": "`raw`, and none of `subject`, `text`, `html`, `reply_to`, `attachments`, `headers`, nor substitutions.",
        "required": ["raw"],
        "properties": {
            "raw": reference("RawMessage"),
            "subject": { "type": "null" },
            "text": { "type": "null" },
            "html": { "type": "null" },
            "reply_to": { "type": "null" },
            "attachments": none,
            "headers": { "type": "object", "maxProperties": 0 },
            "to": plain_to,
        },
    });
    serde_json::json!({
        "type": "object",
        "description": "A message to send: built from its parts (`from`, `subject`, and `text` or `html`), or given whole as `raw` (then none of `subject`, `text`, `html`, `reply_to`, `attachments`, `headers`, nor substitutions). One to 1,000 recipients in `to`, `cc` and `bcc` together.",
        "additionalProperties": false,
        "properties": {
            "from": nullable("MailboxInput", "The sender; an approved sender of the account. With `raw`, the envelope sender (the raw From header when omitted)."),
            "to": recipients("At most 1,000 in `to`, `cc` and `bcc` together."),
            "cc": recipients("Copies; not with substitutions."),
            "bcc": recipients("Receive the message without appearing in it; not with substitutions."),
            "reply_to": nullable("MailboxInput", "Where replies go."),
            "subject": {
                "type": ["string", "null"],
                "description": "No line breaks.",
                "pattern": "^[^\\r\\n]*$",
                "example": "Your order has shipped",
            },
            "text": { "type": ["string", "null"], "description": "The text part; made from `html` when only that is given." },
            "html": { "type": ["string", "null"] },
            "attachments": { "type": "array", "items": reference("AttachmentInput") },
            "headers": {
                "type": "object",
                "description": "Extra headers, such as `X-Campaign`: printable ASCII names without ':' (at most 76), not one the request's fields set or Herald writes, nor `X-Herald-*`; values without line breaks.",
                "propertyNames": {
                    "type": "string",
                    "pattern": "^[!-9;-~]{1,76}$",
                    "not": {
                        "anyOf": [
                            { "pattern": format!("^(?:{reserved})$") },
                            { "pattern": format!("^{}", any_case("x-herald-")) },
                        ],
                    },
                },
                "additionalProperties": one_line(),
                "example": { "X-Campaign": "spring" },
            },
            "tags": {
                "type": "array",
                "description": "Labels that come back in every event of the message; at most 10.",
                "items": reference("Tag"),
                "maxItems": 10,
                "example": ["welcome"],
            },
            "metadata": {
                "type": "object",
                "description": "Key-value pairs that come back in every event of the message: at most 20; keys are 1 to 64 of a-z, A-Z, 0-9, '_', '-', '.'; values up to 1000 octets without control characters.",
                "maxProperties": 20,
                "propertyNames": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$" },
                "additionalProperties": {
                    "type": "string",
                    "pattern": "^(?:[ -~]{0,1000}|[^\\x00-\\x1f\\x7f-\\x9f]{0,250})$",
                },
                "example": { "order": "1234" },
            },
            "stream": nullable("StreamName", "`transactional` (the default) or a bulk stream such as `newsletter`."),
            "raw": nullable("RawMessage", "A complete RFC 5322 message, sent as given to `to`, `cc` and `bcc`."),
        },
        "allOf": [
            {
                "description": "At least one recipient.",
                "anyOf": [
                    { "required": ["to"], "properties": { "to": { "type": "array", "minItems": 1 } } },
                    { "required": ["cc"], "properties": { "cc": { "type": "array", "minItems": 1 } } },
                    { "required": ["bcc"], "properties": { "bcc": { "type": "array", "minItems": 1 } } },
                ],
            },
            { "oneOf": [built, raw] },
        ],
    })
}

/// One IPv4 octet in decimal, without leading zeros.
const IP4: &str =
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

/// Every schema written here by hand, by component name. The OpenAPI
/// document takes these as they are: utoipa's model of a schema has no
/// `not`, and no `allOf` beside `properties`, so [`crate::SendMessage`]'s
/// `ToSchema` carries its properties only, and the document's
/// post-processing puts this in its place.
pub fn components() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("DomainName", DomainName::json()),
        ("EmailAddress", EmailAddress::json()),
        ("SenderRule", SenderRule::json()),
        ("MailboxText", MailboxText::json()),
        ("AccountName", AccountName::json()),
        ("MessageId", MessageId::json()),
        ("WebhookId", WebhookId::json()),
        ("AlertId", AlertId::json()),
        ("BlocklistTarget", BlocklistTarget::json()),
        ("StreamName", StreamName::json()),
        ("Tag", Tag::json()),
        ("EventKind", EventKind::json()),
        ("EventKinds", EventKinds::json()),
        ("DnsName", DnsName::json()),
        ("SuppressionReason", SuppressionReason::json()),
        ("HttpUrl", HttpUrl::json()),
        ("EmailAddressOrEmpty", EmailAddressOrEmpty::json()),
        ("HttpUrlOrEmpty", HttpUrlOrEmpty::json()),
        ("SuppressionCsv", SuppressionCsv::json()),
        ("RawMessage", RawMessage::json()),
        ("MailboxInput", mailbox_input()),
        ("RecipientInput", recipient_input()),
        ("PlainRecipient", plain_recipient()),
        ("AttachmentInput", attachment_input()),
        ("SendMessage", send_message()),
    ]
}

/// The schema for utoipa: `json` less what its model cannot hold.
pub(crate) fn for_utoipa(mut json: serde_json::Value) -> RefOr<Schema> {
    if let Some(o) = json.as_object_mut() {
        o.remove("allOf");
    }
    schema(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utoipa_reads_every_schema_here() {
        for (name, json) in components() {
            let read = std::panic::catch_unwind(|| for_utoipa(json));
            assert!(read.is_ok(), "{name}");
        }
    }

    #[test]
    fn every_reference_here_names_a_component_here() {
        let names: Vec<&str> = components().iter().map(|(n, _)| *n).collect();
        let text = serde_json::to_string(&components().into_iter().map(|(_, j)| j).collect::<Vec<_>>()).unwrap();
        for part in text.split("#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(names.contains(&name), "{name}");
        }
    }

    #[test]
    fn reserved_headers_match_in_any_case() {
        assert_eq!(any_case("x-a1"), "[Xx]-[Aa]1");
    }
}
