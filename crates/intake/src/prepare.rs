//! Herald's preparation of each message for each recipient, just before
//! the wire: VERP return path, List-Unsubscribe and tracking for bulk
//! streams, DKIM signatures last (so they cover what the others added).
//!
//! The DKIM key and the return path are chosen by the submitting account's
//! brand and the From domain together: a domain's key signs only the mail
//! of the brand that registered it, so a header can never borrow another
//! brand's signature or aligned return path. A stream with a sending
//! domain of its own (`stream_domains` in the account's settings) is signed
//! and bounces in that domain instead, so its reputation with mailbox
//! providers is its own.

use std::sync::Arc;

use async_trait::async_trait;
use herald_accounts::{Accounts, Standing};
use herald_domains::Domains;
use herald_message::{HeaderBlock, authors, rewrite_html_parts};
use herald_mta::{Prepare, Prepared};
use herald_spool::Queued;
use herald_store::{Account, Store};
use herald_tracking::{Keyring, Purpose, TrackToken, TrackingLinks, VerpToken, rewrite_html};
use herald_types::{AccountId, AccountSettings, EmailAddress, ReversePath, same_tree};

pub struct HeraldPreparer {
    pub keys: Keyring,
    pub domains: Arc<Domains>,
    pub store: Arc<dyn Store>,
    accounts: Accounts,
    /// Base of tracking and unsubscribe links, without the final slash.
    pub public_url: String,
}

impl std::fmt::Debug for HeraldPreparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeraldPreparer")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl HeraldPreparer {
    pub fn new(keys: Keyring, domains: Arc<Domains>, accounts: Accounts, public_url: String) -> Self {
        Self {
            keys,
            domains,
            store: accounts.store().clone(),
            accounts,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The account a message was accepted for, as it stands now: its
    /// settings (tracking, replies, streams' domains) and brand count from
    /// the first message after a change ([`Accounts::standing`]). `None`
    /// for an account that no longer exists: its mail is signed by nobody.
    async fn account(&self, id: &AccountId) -> Option<Account> {
        match self.accounts.standing(id).await {
            Ok(Standing::Active(account)) => Some(*account),
            Ok(Standing::Missing) => None,
            // Suspended (its mail waits, unprepared), or the standing could
            // not be read: the record itself.
            Ok(Standing::Suspended(_)) | Err(_) => self.store.account_by_id(id).await.ok().flatten(),
        }
    }

    fn token(
        &self,
        purpose: Purpose,
        q: &Queued,
        recipient: &str,
        sent_at: u32,
        url: Option<String>,
    ) -> Option<String> {
        TrackToken {
            purpose,
            message: q.id.clone(),
            account: q.envelope.account.clone(),
            sent_at,
            recipient: recipient.to_owned(),
            url,
        }
        .encode(&self.keys)
    }

    /// List-Unsubscribe (RFC 2369, RFC 8058 one-click) and tracking for one
    /// recipient of a bulk message.
    fn personalize(
        &self,
        q: &Queued,
        index: usize,
        body: &[u8],
        settings: &AccountSettings,
        rp_domain: &str,
    ) -> Vec<u8> {
        let recipient = q.envelope.recipients[index].to_string();
        let sent_at = u32::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(u32::MAX);
        let mut content = body.to_vec();
        if settings.track_opens || settings.track_clicks {
            let click = |target: &str| {
                self.token(Purpose::Click, q, &recipient, sent_at, Some(target.to_owned()))
                    .map(|t| format!("{}/t/c/{t}", self.public_url))
            };
            let links = TrackingLinks {
                click_url: if settings.track_clicks { Some(&click) } else { None },
                open_url: if settings.track_opens {
                    self.token(Purpose::Open, q, &recipient, sent_at, None)
                        .map(|t| format!("{}/t/o/{t}", self.public_url))
                } else {
                    None
                },
                keep_prefixes: vec![format!("{}/u/", self.public_url)],
            };
            if let Some(tracked) = rewrite_html_parts(&content, |html| {
                let out = rewrite_html(html, &links);
                (out.links > 0 || out.pixel).then_some(out.html)
            }) {
                content = tracked;
            }
        }
        let verp = VerpToken {
            message: q.id.clone(),
            recipient: u16::try_from(index).unwrap_or(u16::MAX),
        }
        .local_part(&self.keys);
        // Replies come to the inbound MX when the account wants them sorted
        // and passed on, unless the message names its own Reply-To. The
        // reply address is the VERP token with the reply prefix, so a reply
        // names the message and the person who replied.
        if settings.handles_replies()
            && let Ok(mut block) = HeaderBlock::parse(&content)
            && block.get("Reply-To").is_none()
        {
            block.prepend("Reply-To", &format!("r{}@{rp_domain}", &verp[1..]));
            content = block.to_bytes();
        }
        if let (Some(token), Ok(mut block)) = (
            self.token(Purpose::Unsubscribe, q, &recipient, sent_at, None),
            HeaderBlock::parse(&content),
        ) {
            // The mailto form: the VERP token with the unsubscribe prefix.
            let mailto = format!("u{}@{rp_domain}", &verp[1..]);
            block.remove_where(|n| {
                n.eq_ignore_ascii_case("List-Unsubscribe") || n.eq_ignore_ascii_case("List-Unsubscribe-Post")
            });
            block.prepend("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
            block.prepend(
                "List-Unsubscribe",
                &format!("<{}/u/{token}>, <mailto:{mailto}?subject=unsubscribe>", self.public_url),
            );
            content = block.to_bytes();
        }
        content
    }
}

/// The domain of the first From address, read as acceptance read it.
fn from_domain(body: &[u8]) -> Option<String> {
    let block = HeaderBlock::parse(body).ok()?;
    authors(&block).ok()?.first_from().map(|a| a.domain().to_string())
}

#[async_trait]
impl Prepare for HeraldPreparer {
    /// A suspended account's queued mail (or a suspended master's subs')
    /// waits: looked at for every attempt ([`Accounts::standing`], which
    /// counts a change of status at once), so a suspension holds the queue
    /// and a reactivation releases it.
    async fn hold(&self, q: &Queued) -> bool {
        match self.accounts.standing(&q.envelope.account).await {
            Ok(Standing::Active(_)) => false,
            Ok(Standing::Suspended(_)) => true,
            // A deleted account's mail is not held (it is purged with it).
            Ok(Standing::Missing) => false,
            // Unknown: wait rather than send for an account that may be
            // suspended; the store's answer comes with a later look.
            Err(_) => true,
        }
    }

    /// The account's name, for `[[ip_pools]]` (the same remembered standing).
    async fn account_name(&self, q: &Queued) -> Option<String> {
        match self.accounts.standing(&q.envelope.account).await {
            Ok(Standing::Active(account)) => Some(account.name.to_string()),
            _ => None,
        }
    }

    /// Bulk mail is personalised per recipient (VERP, unsubscribe links,
    /// tracking), and so is a message with substitutions: one recipient a
    /// group. Other mail goes to all at once.
    fn groups(&self, q: &Queued, body: &[u8], recipients: &[usize]) -> Vec<Vec<usize>> {
        if q.envelope.is_bulk() || herald_message::personal::is_personal(body) {
            recipients.iter().map(|&i| vec![i]).collect()
        } else {
            vec![recipients.to_vec()]
        }
    }

    async fn prepare(&self, q: &Queued, body: &[u8], recipients: &[usize]) -> Vec<Prepared> {
        // A message with substitutions is rendered per recipient from the
        // one stored copy (its attachments borrowed, not copied).
        let personal = if herald_message::personal::is_personal(body) {
            match herald_message::personal::decode(body) {
                Ok(stored) => Some(stored),
                Err(e) => {
                    tracing::error!(message = %q.id, error = %e, "a personalised message cannot be read");
                    return recipients
                        .iter()
                        .map(|&i| Prepared {
                            sender: q.envelope.sender.clone(),
                            recipients: vec![i],
                            content: std::sync::Arc::from(&[][..]),
                        })
                        .collect();
                }
            }
        } else {
            None
        };
        let domain = match &personal {
            Some(stored) => EmailAddress::parse(&stored.personal.from.1)
                .ok()
                .map(|a| a.domain().to_string()),
            None => from_domain(body),
        };
        let account = self.account(&q.envelope.account).await;
        let no_settings = AccountSettings::default();
        let settings = account.as_ref().map_or(&no_settings, |a| &a.settings);
        let (signer, rp_domain) = match account.as_ref().map(Account::brand) {
            Some(brand) => {
                // A stream with a domain of its own signs and bounces in it
                // (when aligned with the From domain, as acceptance made
                // sure, and still the brand's); other mail in its From
                // domain.
                let stream_domain = match (&domain, settings.stream_domain(&q.envelope.stream)) {
                    (Some(from), Some(own)) if same_tree(own, from) => {
                        self.domains.sending_for(brand, own).await.map(|s| (own.to_owned(), s))
                    }
                    _ => None,
                };
                let (domain, signer) = match stream_domain {
                    Some((own, sending)) => (Some(own), sending.signer),
                    None => match &domain {
                        Some(d) => (
                            domain.clone(),
                            self.domains.sending_for(brand, d).await.and_then(|s| s.signer),
                        ),
                        None => (None, None),
                    },
                };
                (signer, self.domains.return_path_domain(brand, domain.as_deref()).await)
            }
            None => (None, self.domains.bounce_domain().to_owned()),
        };
        let sign = |content: Vec<u8>| match &signer {
            Some(s) => s.sign(&content).unwrap_or_else(|e| {
                tracing::error!(message = %q.id, error = %e, "DKIM signing failed; sending unsigned");
                content
            }),
            None => content,
        };
        let bulk = q.envelope.is_bulk();
        // Transactional mail is the same for every recipient: sign it once.
        let shared: Option<std::sync::Arc<[u8]>> = (!bulk && personal.is_none()).then(|| sign(body.to_vec()).into());
        recipients
            .iter()
            .map(|&i| {
                let sender = match &q.envelope.sender {
                    // A null sender (a notification) must stay null.
                    ReversePath::Null => ReversePath::Null,
                    ReversePath::Address(original) => {
                        let local = VerpToken {
                            message: q.id.clone(),
                            recipient: u16::try_from(i).unwrap_or(u16::MAX),
                        }
                        .local_part(&self.keys);
                        EmailAddress::parse(&format!("{local}@{rp_domain}"))
                            .map(ReversePath::Address)
                            .unwrap_or_else(|_| ReversePath::Address(original.clone()))
                    }
                };
                let content = match (&shared, &personal) {
                    (Some(c), _) => c.clone(),
                    (None, Some(stored)) => {
                        let address = q.envelope.recipients[i].to_string();
                        match herald_message::personal::render_for(stored, &address) {
                            Ok(copy) if bulk => sign(self.personalize(q, i, &copy, settings, &rp_domain)).into(),
                            Ok(copy) => sign(copy).into(),
                            Err(e) => {
                                tracing::error!(message = %q.id, error = %e, "cannot render a recipient's copy");
                                std::sync::Arc::from(&[][..])
                            }
                        }
                    }
                    (None, None) => sign(self.personalize(q, i, body, settings, &rp_domain)).into(),
                };
                Prepared {
                    sender,
                    recipients: vec![i],
                    content,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_from_domain_is_read_from_any_form() {
        assert_eq!(
            from_domain(b"From: News <news@Acme.test>\r\n\r\nx").as_deref(),
            Some("acme.test")
        );
        assert_eq!(
            from_domain(b"From: news@acme.test\r\n\r\nx").as_deref(),
            Some("acme.test")
        );
        assert_eq!(
            from_domain(b"From: \"a <b>\" <c@d.test>\r\n\r\nx").as_deref(),
            Some("d.test")
        );
        assert_eq!(from_domain(b"Subject: no from\r\n\r\nx"), None);
    }
}
