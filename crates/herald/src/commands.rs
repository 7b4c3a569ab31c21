//! The management commands: they work on the configured store directly, with
//! operator power, whether or not a server runs.

use anyhow::Context as _;
use herald_accounts::{Accounts, Caller};
use herald_http::views;
use herald_store::AccountFilter;
use herald_types::{AccountStatus, KeyScope};

use crate::cli::{AccountCommand, CredentialCommand, KeyCommand, SenderCommand, UserCommand};
use crate::output;

pub(crate) async fn operator_on(accounts: &Accounts, name: &str) -> anyhow::Result<Caller> {
    Ok(Caller::operator(accounts.find(name).await?))
}

fn account_rows(all: &[herald_store::Account]) -> Vec<Vec<String>> {
    all.iter()
        .map(|a| {
            vec![
                a.name.to_string(),
                a.kind().as_str().to_owned(),
                a.parent
                    .as_ref()
                    .map(|p| p.name.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                a.status.as_str().to_owned(),
                tracking(&a.settings),
                stream_domains(&a.settings),
                output::time(a.created_at),
                a.id.to_string(),
            ]
        })
        .collect()
}

const ACCOUNT_HEADER: &[&str] = &[
    "NAME",
    "KIND",
    "PARENT",
    "STATUS",
    "TRACKING",
    "STREAM DOMAINS",
    "CREATED",
    "ID",
];

fn stream_domains(s: &herald_types::AccountSettings) -> String {
    if s.stream_domains.is_empty() {
        return "-".to_owned();
    }
    s.stream_domains
        .iter()
        .map(|(stream, domain)| format!("{stream}={domain}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn tracking(s: &herald_types::AccountSettings) -> String {
    match (s.track_opens, s.track_clicks) {
        (true, true) => "opens,clicks".to_owned(),
        (true, false) => "opens".to_owned(),
        (false, true) => "clicks".to_owned(),
        (false, false) => "-".to_owned(),
    }
}

fn show_account(a: &herald_store::Account, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&views::account(a))
    } else {
        output::table(ACCOUNT_HEADER, &account_rows(std::slice::from_ref(a)));
        Ok(())
    }
}

pub async fn account(accounts: &Accounts, cmd: AccountCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Create { name, parent } => {
            let a = accounts.create_as_operator(&name, parent.as_deref()).await?;
            if json {
                output::json(&views::account(&a))
            } else {
                output::line(a.id.as_str());
                Ok(())
            }
        }
        AccountCommand::List { parent } => {
            let filter = match parent {
                Some(p) => AccountFilter::SubsOf(accounts.find(&p).await?.id),
                None => AccountFilter::All,
            };
            let all = accounts.list_all(filter).await?;
            if json {
                output::json(&herald_api_types::List {
                    data: all.iter().map(views::account).collect(),
                })
            } else {
                output::table(ACCOUNT_HEADER, &account_rows(&all));
                Ok(())
            }
        }
        AccountCommand::Show { name } => show_account(&accounts.find(&name).await?, json),
        AccountCommand::Suspend { name } => {
            let caller = operator_on(accounts, &name).await?;
            show_account(
                &accounts.set_status(&caller, &name, AccountStatus::Suspended).await?,
                json,
            )
        }
        AccountCommand::Reactivate { name } => {
            let caller = operator_on(accounts, &name).await?;
            show_account(&accounts.set_status(&caller, &name, AccountStatus::Active).await?, json)
        }
        AccountCommand::Set {
            name,
            track_opens,
            track_clicks,
            hard_bounces,
            soft_bounces,
            reply_forward,
            reply_url,
            bounce_alert,
            complaint_alert,
            daily_quota,
            rate,
            spam_threshold,
            alert_email,
            stream_domains,
        } => {
            let stream_domains = if stream_domains.is_empty() {
                None
            } else {
                let mut map = std::collections::BTreeMap::new();
                for pair in &stream_domains {
                    let (stream, domain) = pair
                        .split_once('=')
                        .with_context(|| format!("--stream-domain {pair:?}: expected STREAM=DOMAIN"))?;
                    map.insert(stream.trim().to_owned(), domain.trim().to_owned());
                }
                Some(map)
            };
            let patch = herald_accounts::SettingsPatch {
                track_opens,
                track_clicks,
                hard_bounce_threshold: hard_bounces,
                soft_bounce_threshold: soft_bounces,
                reply_forward_to: reply_forward,
                reply_url,
                bounce_alert_percent: bounce_alert,
                complaint_alert_percent: complaint_alert,
                daily_quota,
                rate_per_minute: rate,
                spam_threshold,
                alert_email,
                stream_domains,
            };
            if patch == herald_accounts::SettingsPatch::default() {
                anyhow::bail!(
                    "nothing to set: give --track-opens, --track-clicks, --hard-bounces, --soft-bounces, --reply-forward, --reply-url, --bounce-alert, --complaint-alert, --daily-quota, --rate, --spam-threshold, --alert-email or --stream-domain"
                );
            }
            let caller = operator_on(accounts, &name).await?;
            show_account(&accounts.update_settings(&caller, &name, &patch).await?, json)
        }
        AccountCommand::Promote { name } => {
            let caller = operator_on(accounts, &name).await?;
            show_account(&accounts.promote(&caller, &name).await?, json)
        }
        AccountCommand::Delete { name } => {
            let caller = operator_on(accounts, &name).await?;
            accounts.delete(&caller, &name).await?;
            if !json {
                output::note(&format!("deleted account {name}"));
            }
            Ok(())
        }
    }
}

fn revoked(t: Option<time::OffsetDateTime>) -> String {
    t.map_or_else(|| "-".to_owned(), output::time)
}

pub async fn api_key(accounts: &Accounts, cmd: KeyCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Create { account, admin, label } => {
            let caller = operator_on(accounts, &account.account).await?;
            let scope = if admin { KeyScope::Admin } else { KeyScope::Account };
            let issued = accounts.issue_api_key(&caller, scope, label).await?;
            if json {
                return output::json(&views::created_api_key(&issued));
            }
            output::line(&issued.secret);
            output::note("This key is shown once; Herald keeps only a hash of it.");
            Ok(())
        }
        KeyCommand::List { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let keys = accounts.list_api_keys(&caller).await?;
            if json {
                return output::json(&herald_api_types::List {
                    data: keys.iter().map(views::api_key).collect(),
                });
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.prefix.clone(),
                        k.scope.as_str().to_owned(),
                        k.label.clone().unwrap_or_else(|| "-".to_owned()),
                        output::time(k.created_at),
                        revoked(k.revoked_at),
                        k.id.to_string(),
                    ]
                })
                .collect();
            output::table(&["PREFIX", "SCOPE", "LABEL", "CREATED", "REVOKED", "ID"], &rows);
            Ok(())
        }
        KeyCommand::Revoke { account, id } => {
            let caller = operator_on(accounts, &account.account).await?;
            let key = accounts.revoke_api_key(&caller, &id).await?;
            if json {
                output::json(&views::api_key(&key))
            } else {
                output::note(&format!("revoked {}", key.prefix));
                Ok(())
            }
        }
    }
}

pub async fn user(accounts: &Accounts, cmd: UserCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            account,
            email,
            password,
            password_stdin,
            operator,
        } => {
            let caller = operator_on(accounts, &account.account).await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                password
            };
            let created = accounts.create_user(&caller, &email, password, operator).await?;
            let name = caller.account.name.to_string();
            if json {
                return output::json(&herald_api_types::CreatedUser {
                    password: created.password,
                    record: views::user(&created.user, &name),
                });
            }
            if let Some(password) = &created.password {
                output::line(password);
                output::note("This password is shown once; Herald keeps only a hash of it.");
            }
            output::note(&format!("user {} created for {name}", created.user.email));
            Ok(())
        }
        UserCommand::List { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let users = accounts.list_users(&caller).await?;
            let name = caller.account.name.to_string();
            if json {
                return output::json(&herald_api_types::List {
                    data: users.iter().map(|u| views::user(u, &name)).collect(),
                });
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.email.clone(),
                        if u.operator { "operator" } else { "account" }.to_owned(),
                        u.last_login_at.map_or_else(|| "-".to_owned(), output::time),
                        u.id.to_string(),
                    ]
                })
                .collect();
            output::table(&["EMAIL", "ROLE", "LAST SIGN-IN", "ID"], &rows);
            Ok(())
        }
        UserCommand::Delete { account, user } => {
            let caller = operator_on(accounts, &account.account).await?;
            let user = accounts.delete_user(&caller, &user).await?;
            if json {
                output::json(&views::user(&user, caller.account.name.as_str()))
            } else {
                output::note(&format!("deleted {}", user.email));
                Ok(())
            }
        }
    }
}

pub async fn smtp_credential(accounts: &Accounts, cmd: CredentialCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        CredentialCommand::Create { account, label } => {
            let caller = operator_on(accounts, &account.account).await?;
            let issued = accounts.issue_smtp_credential(&caller, label).await?;
            if json {
                return output::json(&views::created_smtp_credential(&issued));
            }
            output::line(&format!("username: {}", issued.record.username));
            output::line(&format!("password: {}", issued.password));
            output::note("The password is shown once; Herald keeps only a hash of it.");
            Ok(())
        }
        CredentialCommand::List { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let all = accounts.list_smtp_credentials(&caller).await?;
            if json {
                return output::json(&herald_api_types::List {
                    data: all.iter().map(views::smtp_credential).collect(),
                });
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|c| {
                    vec![
                        c.username.clone(),
                        c.label.clone().unwrap_or_else(|| "-".to_owned()),
                        output::time(c.created_at),
                        revoked(c.revoked_at),
                        c.id.to_string(),
                    ]
                })
                .collect();
            output::table(&["USERNAME", "LABEL", "CREATED", "REVOKED", "ID"], &rows);
            Ok(())
        }
        CredentialCommand::Revoke { account, id } => {
            let caller = operator_on(accounts, &account.account).await?;
            let c = accounts.revoke_smtp_credential(&caller, &id).await?;
            if json {
                output::json(&views::smtp_credential(&c))
            } else {
                output::note(&format!("revoked {}", c.username));
                Ok(())
            }
        }
    }
}

pub async fn sender(accounts: &Accounts, cmd: SenderCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        SenderCommand::Add { account, sender, force } => {
            let caller = operator_on(accounts, &account.account).await?;
            let added = accounts.add_sender(&caller, &sender, force).await?;
            if json {
                output::json(&views::sender(&added))
            } else {
                output::line(&added.rule.to_string());
                Ok(())
            }
        }
        SenderCommand::List { account } => {
            let caller = operator_on(accounts, &account.account).await?;
            let all = accounts.list_senders(&caller).await?;
            if json {
                return output::json(&herald_api_types::List {
                    data: all.iter().map(views::sender).collect(),
                });
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| vec![s.rule.to_string(), output::time(s.created_at)])
                .collect();
            output::table(&["SENDER", "ADDED"], &rows);
            Ok(())
        }
        SenderCommand::Remove { account, sender } => {
            let caller = operator_on(accounts, &account.account).await?;
            accounts.remove_sender(&caller, &sender).await?;
            if !json {
                output::note(&format!("removed {sender}"));
            }
            Ok(())
        }
    }
}

/// `herald check senders`: approvals the domain-ownership rule would refuse
/// now. Exit status 1 when one names another brand's domain (that mail is
/// refused at submission whatever the approval says).
pub async fn check_senders(accounts: &Accounts, json: bool) -> anyhow::Result<()> {
    let found = accounts.questionable_senders().await?;
    let foreign = found
        .iter()
        .filter(|q| q.problem == herald_accounts::SenderProblem::OtherBrand)
        .count();
    if json {
        let rows: Vec<serde_json::Value> = found
            .iter()
            .map(|q| {
                serde_json::json!({
                    "account": q.account.name.as_str(),
                    "sender": q.rule.to_string(),
                    "problem": q.problem.as_str(),
                    "verified_by": q.owner.as_ref().map(|o| o.registered.to_string()),
                })
            })
            .collect();
        output::json(&serde_json::json!({ "data": rows }))?;
    } else if found.is_empty() {
        output::line("every approved sender is in a domain its brand verified");
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|q| {
                let why = match q.problem {
                    herald_accounts::SenderProblem::OtherBrand => format!(
                        "another brand verified {}: its mail is refused",
                        q.owner.as_ref().map(|o| o.registered.to_string()).unwrap_or_default()
                    ),
                    herald_accounts::SenderProblem::Unverified => {
                        "no brand verified the domain: a new approval would need it".to_owned()
                    }
                };
                vec![q.account.name.to_string(), q.rule.to_string(), why]
            })
            .collect();
        output::table(&["ACCOUNT", "SENDER", "PROBLEM"], &rows);
    }
    if foreign > 0 {
        anyhow::bail!("{foreign} approved sender(s) name another brand's domain");
    }
    Ok(())
}
