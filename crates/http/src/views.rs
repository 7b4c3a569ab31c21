//! Store rows to API payloads. The CLI's `--json` output uses the same
//! conversions, so the CLI and the API print the same shapes.

use herald_accounts::{IssuedCredential, IssuedKey};
use herald_api_types as api;
use herald_store as store;
use herald_types::{AccountKind, AccountStatus, KeyScope};

pub fn account(a: &store::Account) -> api::Account {
    api::Account {
        id: a.id.to_string(),
        name: a.name.to_string(),
        kind: match a.kind() {
            AccountKind::Master => api::AccountKind::Master,
            AccountKind::Sub => api::AccountKind::Sub,
        },
        parent: a.parent.as_ref().map(|p| p.name.to_string()),
        status: match a.status {
            AccountStatus::Active => api::AccountStatus::Active,
            AccountStatus::Suspended => api::AccountStatus::Suspended,
        },
        created_at: a.created_at,
        settings: api::AccountSettings {
            track_opens: a.settings.track_opens,
            track_clicks: a.settings.track_clicks,
            hard_bounce_threshold: a.settings.hard_bounce_threshold,
            soft_bounce_threshold: a.settings.soft_bounce_threshold,
            reply_forward_to: a.settings.reply_forward_to.clone(),
            reply_url: a.settings.reply_url.clone(),
            bounce_alert_percent: f64::from(a.settings.bounce_alert_bp) / 100.0,
            complaint_alert_percent: f64::from(a.settings.complaint_alert_bp) / 100.0,
            daily_quota: a.settings.daily_quota,
            rate_per_minute: a.settings.rate_per_minute,
            spam_threshold: a.settings.spam_threshold_centi.map(|c| f64::from(c) / 100.0),
            alert_email: a.settings.alert_email.clone(),
            stream_domains: a.settings.stream_domains.clone(),
        },
    }
}

pub fn scope(s: KeyScope) -> api::KeyScope {
    match s {
        KeyScope::Account => api::KeyScope::Account,
        KeyScope::Admin => api::KeyScope::Admin,
    }
}

pub fn scope_from(s: api::KeyScope) -> KeyScope {
    match s {
        api::KeyScope::Account => KeyScope::Account,
        api::KeyScope::Admin => KeyScope::Admin,
    }
}

pub fn api_key(k: &store::ApiKey) -> api::ApiKey {
    api::ApiKey {
        id: k.id.to_string(),
        prefix: k.prefix.clone(),
        scope: scope(k.scope),
        label: k.label.clone(),
        created_at: k.created_at,
        revoked_at: k.revoked_at,
    }
}

pub fn created_api_key(k: &IssuedKey) -> api::CreatedApiKey {
    api::CreatedApiKey {
        key: k.secret.clone(),
        record: api_key(&k.record),
    }
}

pub fn smtp_credential(c: &store::SmtpCredential) -> api::SmtpCredential {
    api::SmtpCredential {
        id: c.id.to_string(),
        username: c.username.clone(),
        label: c.label.clone(),
        created_at: c.created_at,
        revoked_at: c.revoked_at,
    }
}

pub fn created_smtp_credential(c: &IssuedCredential) -> api::CreatedSmtpCredential {
    api::CreatedSmtpCredential {
        password: c.password.clone(),
        record: smtp_credential(&c.record),
    }
}

/// A dashboard user of the account named `account`.
pub fn user(u: &store::User, account: &str) -> api::User {
    api::User {
        id: u.id.to_string(),
        email: u.email.clone(),
        account: account.to_owned(),
        operator: u.operator,
        created_at: u.created_at,
        last_login_at: u.last_login_at,
        locked_until: u.locked_until.filter(|t| *t > time::OffsetDateTime::now_utc()),
    }
}

pub fn sender(s: &store::ApprovedSender) -> api::Sender {
    api::Sender {
        sender: s.rule.to_string(),
        created_at: s.created_at,
    }
}

/// A suppression entry as the API shows it to `caller`: its own, or its
/// brand's (kept on the master account).
pub fn suppression(s: &store::Suppression, caller: &herald_accounts::Caller) -> api::Suppression {
    let account = match &caller.account.parent {
        Some(p) if p.id == s.account => p.name.to_string(),
        _ => caller.account.name.to_string(),
    };
    api::Suppression {
        address: s.shown.clone(),
        reason: s.reason.clone(),
        source_event: s.source_event.as_ref().map(ToString::to_string),
        brand: s.brand,
        account,
        created_at: s.created_at,
    }
}

/// A webhook as the API shows it; the secret only when it was just made.
pub fn webhook(w: &store::Webhook, with_secret: bool) -> api::Webhook {
    api::Webhook {
        id: w.id.to_string(),
        url: w.url.clone(),
        events: w.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
        batch_size: w.batch_size,
        status: w.status.as_str().to_owned(),
        failing_since: w.failing_since,
        last_error: w.last_error.clone(),
        created_at: w.created_at,
        secret: with_secret.then(|| w.secret.clone()),
    }
}

pub fn event(e: &herald_types::Event, account_name: &str) -> api::Event {
    api::Event {
        id: e.id.to_string(),
        kind: e.kind.as_str().to_owned(),
        at: e.at,
        account: account_name.to_owned(),
        stream: e.stream.clone(),
        message_id: e.message_id.to_string(),
        recipient: e.recipient.clone(),
        sender: e.sender.clone(),
        source_ip: e.source_ip.map(|ip| ip.to_string()),
        mx: e.mx.clone(),
        smtp: e.smtp.as_ref().map(|s| api::SmtpAnswer {
            code: s.code,
            enhanced: s.enhanced.clone(),
            text: s.text.clone(),
            phase: s.phase.clone(),
        }),
        bounce: e.bounce.as_ref().map(|b| api::Bounce {
            class: b.class.as_str().to_owned(),
            reason: b.reason.clone(),
        }),
        reason: e.reason.clone(),
        tags: e.tags.clone(),
        metadata: e.metadata.iter().cloned().collect(),
        user_agent: e.engagement.as_ref().map(|g| g.user_agent.clone()),
        ip: e.engagement.as_ref().and_then(|g| g.ip).map(|ip| ip.to_string()),
        machine: e.engagement.as_ref().map(|g| g.machine),
        url: e.engagement.as_ref().and_then(|g| g.url.clone()),
        count: e.engagement.as_ref().map(|g| g.count),
        spam: e.spam.as_ref().map(|g| api::SpamScore {
            score: g.score,
            threshold: g.threshold,
            rules: g.rules.clone(),
        }),
    }
}

pub fn dns_record(r: &herald_auth::DnsRecord) -> api::DnsRecord {
    api::DnsRecord {
        kind: r.kind.as_str().to_owned(),
        name: r.name.clone(),
        rtype: r.rtype.to_owned(),
        value: r.value.clone(),
    }
}

pub fn domain(r: &herald_domains::DomainReport) -> api::Domain {
    api::Domain {
        name: r.domain.name.to_string(),
        created_at: r.domain.created_at,
        verified_at: r.domain.verified_at,
        keys: r
            .domain
            .keys
            .iter()
            .map(|k| api::DkimKey {
                selector: k.selector.clone(),
                algorithm: k.algorithm.as_str().to_owned(),
                state: k.state.as_str().to_owned(),
                created_at: k.created_at,
            })
            .collect(),
        records: r.records.iter().map(dns_record).collect(),
    }
}

pub fn verification(v: &herald_domains::Verification) -> api::DomainVerification {
    api::DomainVerification {
        domain: domain(&v.report),
        verified: v.verified,
        switched: v.switched,
        checks: v
            .checks
            .iter()
            .map(|(record, check)| {
                let (status, found) = match check {
                    herald_auth::Check::Ok => ("ok", None),
                    herald_auth::Check::Missing => ("missing", None),
                    herald_auth::Check::Wrong(found) => ("wrong", Some(found.clone())),
                };
                api::RecordCheck {
                    record: dns_record(record),
                    status: status.to_owned(),
                    found,
                }
            })
            .collect(),
    }
}

/// An import's outcome as the API shows it.
pub fn imported_suppressions(done: herald_accounts::suppressions::Imported) -> api::ImportedSuppressions {
    api::ImportedSuppressions {
        rows: done.rows,
        added: done.added,
        skipped: done.skipped,
        errors: done
            .bad
            .into_iter()
            .map(|b| api::ImportError {
                line: b.line,
                reason: b.reason,
            })
            .collect(),
    }
}

/// The columns of a DMARC sources export.
pub const DMARC_SOURCES_COLUMNS: [&str; 16] = [
    "ip",
    "reverse_dns",
    "label",
    "service",
    "service_type",
    "why",
    "reporters",
    "messages",
    "dmarc_pass",
    "spf_pass",
    "spf_aligned",
    "dkim_pass",
    "dkim_aligned",
    "disposition_none",
    "disposition_quarantine",
    "disposition_reject",
];

/// A summary's sources as CSV (the columns of [`DMARC_SOURCES_COLUMNS`],
/// largest first; reporters joined by `;`). Reverse DNS names and
/// reporters' names come from strangers: every cell goes through
/// [`herald_types::csv_file`], which neutralises formulas.
pub fn dmarc_sources_csv(summary: &herald_api_types::dmarc::DmarcSummary) -> String {
    let mut out = herald_types::csv_file::Writer::new();
    out.header(&DMARC_SOURCES_COLUMNS);
    for s in &summary.sources {
        let t = &s.tally;
        let mut row = vec![
            s.ip.clone(),
            s.reverse_dns.clone().unwrap_or_default(),
            s.label.as_str().to_owned(),
            s.service.as_ref().map(|k| k.name.clone()).unwrap_or_default(),
            s.service.as_ref().map(|k| k.kind.clone()).unwrap_or_default(),
            s.why.clone(),
            s.reporters.join(";"),
        ];
        row.extend(
            [
                t.messages,
                t.dmarc_pass,
                t.spf_pass,
                t.spf_aligned,
                t.dkim_pass,
                t.dkim_aligned,
                t.disposition_none,
                t.disposition_quarantine,
                t.disposition_reject,
            ]
            .iter()
            .map(ToString::to_string),
        );
        out.row(&row);
    }
    out.take()
}

/// The columns of an events CSV export.
pub const EVENT_CSV_HEADER: &str = "id,type,at,account,stream,message_id,recipient,sender,source_ip,mx,smtp_code,\
smtp_enhanced,smtp_text,smtp_phase,bounce_class,bounce_reason,reason,tags,metadata,user_agent,ip,machine,url\r\n";

/// One event as a CSV row of `out` (the columns of [`EVENT_CSV_HEADER`]);
/// tags joined by `;`, metadata as `key=value;…`; quoted per RFC 4180 and
/// formula cells neutralised ([`herald_types::csv_file`]).
pub fn event_csv(out: &mut herald_types::csv_file::Writer, e: &api::Event) {
    let at =
        e.at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let fields = [
        e.id.clone(),
        e.kind.clone(),
        at,
        e.account.clone(),
        e.stream.clone(),
        e.message_id.clone(),
        opt(&e.recipient),
        opt(&e.sender),
        opt(&e.source_ip),
        opt(&e.mx),
        e.smtp.as_ref().map(|s| s.code.to_string()).unwrap_or_default(),
        e.smtp.as_ref().and_then(|s| s.enhanced.clone()).unwrap_or_default(),
        e.smtp.as_ref().map(|s| s.text.clone()).unwrap_or_default(),
        e.smtp.as_ref().map(|s| s.phase.clone()).unwrap_or_default(),
        e.bounce.as_ref().map(|b| b.class.clone()).unwrap_or_default(),
        e.bounce.as_ref().map(|b| b.reason.clone()).unwrap_or_default(),
        opt(&e.reason),
        e.tags.join(";"),
        e.metadata
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";"),
        opt(&e.user_agent),
        opt(&e.ip),
        e.machine.map(|m| m.to_string()).unwrap_or_default(),
        opt(&e.url),
    ];
    out.row(&fields);
}

/// Stats for `caller`'s account and, for a master, its subs: the rows the
/// API and `herald stats` show, with rates.
pub async fn stats(
    accounts: &herald_accounts::Accounts,
    caller: &herald_accounts::Caller,
    mut query: store::StatsQuery,
) -> herald_accounts::AccountsResult<api::Stats> {
    let mut names = std::collections::HashMap::new();
    names.insert(caller.account.id.to_string(), caller.account.name.to_string());
    if caller.account.parent.is_none() {
        for sub in accounts
            .store()
            .list_accounts(store::AccountFilter::SubsOf(caller.account.id.clone()))
            .await?
        {
            names.insert(sub.id.to_string(), sub.name.to_string());
        }
    }
    query.accounts = names
        .keys()
        .filter_map(|id| herald_types::AccountId::parse(id).ok())
        .collect();
    let rows = accounts.store().stats(&query).await?;
    let by = match query.period {
        store::StatsPeriod::Hour => "hour",
        store::StatsPeriod::Day => "day",
    };
    let group = query.group.map(|g| {
        match g {
            store::StatsGroup::Account => "account",
            store::StatsGroup::Stream => "stream",
            store::StatsGroup::SenderDomain => "sender_domain",
            store::StatsGroup::SourceIp => "ip",
            store::StatsGroup::ReceivingDomain => "receiving_domain",
        }
        .to_owned()
    });
    let data = rows
        .iter()
        .map(|r| api::StatsRow {
            period: r.period,
            group: query.group.map(|g| match g {
                store::StatsGroup::Account => names.get(&r.group).cloned().unwrap_or_else(|| r.group.clone()),
                _ => r.group.clone(),
            }),
            counts: store::COUNTERS
                .iter()
                .zip(r.counts.0)
                .map(|(c, n)| ((*c).to_owned(), n))
                .collect(),
            rates: rates(&r.counts),
        })
        .collect();
    Ok(api::Stats {
        by: by.to_owned(),
        group,
        data,
    })
}

/// The rates a sender watches, each with its base; absent when the base is 0.
pub fn rates(c: &store::Counts) -> std::collections::BTreeMap<String, f64> {
    c.rates().into_iter().map(|(name, r)| (name.to_owned(), r)).collect()
}

/// A stored DMARC (or TLS) report, without its content.
pub fn dmarc_report(r: herald_store::StoredReport) -> herald_api_types::dmarc::DmarcReport {
    herald_api_types::dmarc::DmarcReport {
        id: r.id,
        kind: r.kind.as_str().to_owned(),
        org_name: r.org_name,
        report_id: r.report_id,
        domain: r.domain,
        begin: r.begin,
        end: r.end,
        received_at: r.received_at,
        origin: r.origin,
        source_name: r.source_name,
        records: r.record_count,
        messages: r.message_count,
    }
}

/// A report that could not be read.
pub fn broken_report(b: herald_store::BrokenReport) -> herald_api_types::dmarc::BrokenDmarcReport {
    herald_api_types::dmarc::BrokenDmarcReport {
        id: b.id,
        received_at: b.received_at,
        origin: b.origin,
        source_name: b.source_name,
        error: b.error,
        size: b.size,
        digest: b.digest,
    }
}

/// A stored listing, with why the viewer watches its target.
pub fn listing(l: &store::Listing, origins: Vec<String>) -> api::monitor::Listing {
    api::monitor::Listing {
        kind: if l.seen.kind == "ip" {
            api::monitor::TargetKind::Ip
        } else {
            api::monitor::TargetKind::Domain
        },
        target: l.seen.target.clone(),
        list: l.seen.list.clone(),
        name: l.seen.name.clone(),
        started_at: l.started_at,
        ended_at: l.ended_at,
        last_seen_at: l.last_seen_at,
        codes: l.seen.codes.clone(),
        reason: l.seen.reason.clone(),
        delist_url: l.seen.delist_url.clone(),
        origins,
    }
}

/// A stored alert of the account named `account`.
pub fn alert(a: &store::Alert, account: &str) -> api::monitor::Alert {
    api::monitor::Alert {
        id: a.id.to_string(),
        account: account.to_owned(),
        kind: a.kind.clone(),
        key: a.key.clone(),
        state: if a.resolved_at.is_some() {
            api::monitor::AlertState::Resolved
        } else {
            api::monitor::AlertState::Open
        },
        message: a.message.clone(),
        opened_at: a.opened_at,
        notified_at: a.notified_at,
        resolved_at: a.resolved_at,
        acknowledged_at: a.acknowledged_at,
    }
}
