//! `herald domain`: sending domains, with operator power over the store.

use std::sync::Arc;

use anyhow::bail;
use herald_accounts::Accounts;
use herald_domains::{DomainReport, Domains};
use herald_http::views;
use herald_store::Account;
use herald_types::DomainName;

use crate::cli::DomainCommand;
use crate::config::Config;
use crate::output;

/// The domains service as `serve` and the CLI both build it.
pub fn service(config: &Config, store: Arc<dyn herald_store::Store>, secret: &[u8]) -> anyhow::Result<Domains> {
    let settings = herald_dns::Settings {
        cache: false,
        ..herald_dns::Settings::default()
    };
    let resolver = if config.dns_servers.is_empty() {
        herald_dns::HickoryResolver::system(settings)
    } else {
        herald_dns::HickoryResolver::with_servers(&config.dns_servers, settings)
    }
    .map_err(|e| anyhow::anyhow!("cannot set up the DNS resolver: {e}"))?;
    Ok(Domains::new(
        store,
        Arc::new(resolver),
        Arc::new(herald_auth::Sealer::new(secret)),
        config.domains.clone(),
    ))
}

/// The account that owns `domain`.
async fn owner(accounts: &Accounts, domain: &str) -> anyhow::Result<Account> {
    let name = DomainName::parse(domain)?;
    let Some(d) = accounts.store().domain(&name).await? else {
        bail!("domain {name} is not registered")
    };
    match accounts.store().account_by_id(&d.account).await? {
        Some(a) => Ok(a),
        None => bail!("domain {name} has no account"),
    }
}

fn print_report(r: &DomainReport) {
    let state = match r.domain.verified_at {
        Some(at) => format!("verified {}", output::time(at)),
        None => "not verified".to_owned(),
    };
    output::line(&format!("{}  ({state})", r.domain.name));
    for k in &r.domain.keys {
        output::line(&format!(
            "  key {:<16} {:<15} {}",
            k.selector,
            k.algorithm.as_str(),
            k.state.as_str()
        ));
    }
    output::line("  publish:");
    for rec in &r.records {
        output::line(&format!("  {:<5} {} {}", rec.rtype, rec.name, rec.value));
    }
}

fn show(r: &DomainReport, json: bool) -> anyhow::Result<()> {
    if json {
        output::json(&views::domain(r))
    } else {
        print_report(r);
        Ok(())
    }
}

pub async fn run(config: &Config, accounts: &Accounts, cmd: DomainCommand, json: bool) -> anyhow::Result<()> {
    let secret = crate::secret::load_or_create(&config.secret_file)?;
    let domains = service(config, accounts.store().clone(), &secret)?;
    match cmd {
        DomainCommand::Add { domain, account } => {
            let account = accounts.find(&account.account).await?;
            show(&domains.add(&account, &domain).await?, json)
        }
        DomainCommand::List { account } => {
            let account = accounts.find(&account.account).await?;
            let all = domains.list(&account).await?;
            if json {
                return output::json(&herald_api_types::List {
                    data: all.iter().map(views::domain).collect(),
                });
            }
            all.iter().for_each(print_report);
            Ok(())
        }
        DomainCommand::Show { domain } => show(&domains.get(&owner(accounts, &domain).await?, &domain).await?, json),
        DomainCommand::Verify { domain } => {
            let v = domains.verify(&owner(accounts, &domain).await?, &domain).await?;
            if json {
                output::json(&views::verification(&v))?;
            } else {
                for c in views::verification(&v).checks {
                    let found = c.found.map(|f| format!(" (found: {f})")).unwrap_or_default();
                    output::line(&format!(
                        "{:<8} {:<5} {} {}{found}",
                        c.status, c.record.rtype, c.record.name, c.record.value
                    ));
                }
                if v.switched {
                    output::note("the rotation's new keys were found and now sign");
                }
            }
            if !v.verified {
                let missing = v.checks.iter().filter(|(_, c)| *c != herald_auth::Check::Ok).count();
                bail!("{domain} is not verified: {missing} record(s) missing or wrong");
            }
            Ok(())
        }
        DomainCommand::Rotate { domain } => {
            show(&domains.rotate(&owner(accounts, &domain).await?, &domain).await?, json)
        }
        DomainCommand::Retire { domain } => {
            show(&domains.retire(&owner(accounts, &domain).await?, &domain).await?, json)
        }
        DomainCommand::Delete { domain } => {
            domains.delete(&owner(accounts, &domain).await?, &domain).await?;
            output::note(&format!("deleted {domain}"));
            Ok(())
        }
    }
}
