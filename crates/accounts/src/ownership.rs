//! Which brand a name belongs to. A sending domain belongs to the brand (a
//! master account and its subs) that registered it and proved control of
//! it by publishing its records: the closest *verified* registration at or
//! above a domain decides, so `news.acme.test` belongs to whoever verified
//! `acme.test` unless someone verified `news.acme.test` itself.
//!
//! Unverified registrations confer nothing: registering a name costs
//! nothing, so a registration alone must not let a tenant claim (or block)
//! a domain that another brand can prove is theirs.

use herald_store::Account;
use herald_types::{AccountId, DomainName, SenderRule};

use crate::{Accounts, AccountsError, AccountsResult, Caller};

/// The brand a domain belongs to, and through which registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The master account of the brand.
    pub brand: AccountId,
    /// The account that registered the domain (the master or one of its subs).
    pub account: AccountId,
    /// The registered domain: the one asked about or a parent of it.
    pub registered: DomainName,
}

/// `d` and each of its parents, nearest first (`a.b.test`, `b.test`, `test`).
pub fn self_and_parents(d: &DomainName) -> impl Iterator<Item = DomainName> + '_ {
    let s = d.as_str();
    std::iter::once(0)
        .chain(s.match_indices('.').map(|(i, _)| i + 1))
        .filter_map(move |start| DomainName::parse(&s[start..]).ok())
}

impl Accounts {
    /// The brand `domain` belongs to, if a brand verified it or a parent.
    pub async fn domain_owner(&self, domain: &DomainName) -> AccountsResult<Option<Owner>> {
        for name in self_and_parents(domain) {
            let Some(found) = self.store.domain(&name).await? else {
                continue;
            };
            if found.verified_at.is_none() {
                continue;
            }
            let Some(account) = self.store.account_by_id(&found.account).await? else {
                continue;
            };
            return Ok(Some(Owner {
                brand: account.brand().clone(),
                account: account.id,
                registered: found.name,
            }));
        }
        Ok(None)
    }

    /// Whether `account`'s brand may put `domain` in a sender rule: it
    /// verified the domain or a parent of it.
    pub async fn brand_owns(&self, account: &Account, domain: &DomainName) -> AccountsResult<bool> {
        Ok(self
            .domain_owner(domain)
            .await?
            .is_some_and(|o| &o.brand == account.brand()))
    }

    /// Approves a sender for the caller's account. The brand must have
    /// registered and verified the rule's domain (or a parent); an operator
    /// (CLI or admin key) may approve any domain with `force`, which is
    /// logged. Otherwise `Unprocessable`.
    pub async fn add_sender(
        &self,
        caller: &Caller,
        rule: &str,
        force: bool,
    ) -> AccountsResult<herald_store::ApprovedSender> {
        let parsed = SenderRule::parse(rule)?;
        let domain = rule_domain(&parsed);
        if !self.brand_owns(&caller.account, domain).await? {
            if force && caller.admin {
                tracing::warn!(account = %caller.account.name, sender = %parsed,
                    "sender approved by operator override: the brand has not verified this domain");
            } else if force {
                return Err(AccountsError::Forbidden(
                    "only an operator (the CLI or an admin key) may override the domain check".to_owned(),
                ));
            } else {
                return Err(AccountsError::Unprocessable(format!(
                    "{domain} is not a verified sending domain of this brand: register it (herald domain add), \
                     publish its records and verify it first"
                )));
            }
        }
        let added = self.store.add_sender(&caller.account.id, &parsed).await?;
        tracing::info!(account = %caller.account.name, sender = %parsed, "sender approved");
        Ok(added)
    }

    /// Approvals that the rule above would refuse now: rules whose domain
    /// belongs to another brand, or to no brand at all. For `herald check
    /// senders`, after upgrading from a version without the rule.
    pub async fn questionable_senders(&self) -> AccountsResult<Vec<QuestionableSender>> {
        let mut out = Vec::new();
        for account in self.store.list_accounts(herald_store::AccountFilter::All).await? {
            for approved in self.store.list_senders(&account.id).await? {
                let domain = rule_domain(&approved.rule);
                let owner = self.domain_owner(domain).await?;
                let problem = match &owner {
                    Some(o) if &o.brand == account.brand() => continue,
                    Some(_) => SenderProblem::OtherBrand,
                    None => SenderProblem::Unverified,
                };
                out.push(QuestionableSender {
                    account: account.clone(),
                    rule: approved.rule,
                    problem,
                    owner,
                });
            }
        }
        Ok(out)
    }
}

/// The domain a rule is about.
pub fn rule_domain(rule: &SenderRule) -> &DomainName {
    match rule {
        SenderRule::Domain(d) => d,
        SenderRule::Address(a) => a.domain(),
    }
}

/// Why an existing approval would be refused now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderProblem {
    /// Another brand verified the domain: mail in it is refused at
    /// submission whatever this approval says.
    OtherBrand,
    /// No brand verified the domain: the approval stands, but a new one
    /// would need the domain verified (or an operator override).
    Unverified,
}

impl SenderProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtherBrand => "other_brand",
            Self::Unverified => "unverified",
        }
    }
}

/// An approval [`Accounts::questionable_senders`] found.
#[derive(Debug, Clone)]
pub struct QuestionableSender {
    pub account: Account,
    pub rule: SenderRule,
    pub problem: SenderProblem,
    pub owner: Option<Owner>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_and_its_parents_nearest_first() {
        let d = DomainName::parse("a.b.acme.test").unwrap();
        let all: Vec<String> = self_and_parents(&d).map(|d| d.to_string()).collect();
        assert_eq!(all, ["a.b.acme.test", "b.acme.test", "acme.test", "test"]);
    }
}
