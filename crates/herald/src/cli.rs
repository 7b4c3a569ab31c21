//! The command line, as `herald --help` shows it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Herald: a self-hosted email delivery platform")]
pub struct Cli {
    /// Config file (default: ./herald.toml if present, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE", env = "HERALD_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format: text or json (overrides [log] format).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Print results as JSON (the same shapes as the HTTP API).
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every service in the foreground until Ctrl-C.
    Serve,
    /// Write or check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Master accounts and sub-accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// API keys (shown once, stored hashed).
    #[command(subcommand, name = "api-key")]
    ApiKey(KeyCommand),
    /// SMTP credentials (password shown once, stored hashed).
    #[command(subcommand, name = "smtp-credential")]
    SmtpCredential(CredentialCommand),
    /// Approved senders: an exact address or @domain.
    #[command(subcommand)]
    Sender(SenderCommand),
    /// Dashboard users (sign-in at /login; passwords stored hashed).
    #[command(subcommand)]
    User(UserCommand),
    /// Sending domains: DKIM keys, DNS records, verification, rotation.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// An account's events, oldest first; --follow keeps printing new ones.
    Events(EventsArgs),
    /// The running server's delivery queue.
    Queue(QueueArgs),
    /// Send a message through the running server (the send API).
    Send(Box<SendArgs>),
    /// Suppression lists: addresses mail is not sent to.
    #[command(subcommand)]
    Suppression(SuppressionCommand),
    /// Read bounces, complaints and auto-replies.
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Counts and rates per hour or day (a master's include its subs').
    Stats(StatsArgs),
    /// DMARC aggregate and failure reports and TLS reports: import, list,
    /// summarise.
    #[command(subcommand)]
    Dmarc(DmarcCommand),
    /// Check a domain's DNS records, or an address, network or domain
    /// against the blocklists.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Blocklist listings found by the scheduled checks.
    #[command(subcommand)]
    Blocklists(BlocklistsCommand),
    /// An account's alerts: list and acknowledge.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Delete history older than `[retention]` keeps it (the server does
    /// this daily).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The response rules: what an SMTP answer means.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Webhooks (postback URLs) of an account, through the running server.
    Webhook(WebhookArgs),
    /// A sent message and each recipient's timeline, through the running
    /// server.
    Message(MessageArgs),
    /// An account's reputation score over 7 days, and each sending IP's,
    /// through the running server.
    Reputation(ServerArgs),
    /// Whether the running server is healthy (exit status 1 when not).
    Health(ServerArgs),
    /// The running server's Prometheus metrics (`[metrics]` listener and
    /// token when configured; --api-key is not sent).
    Metrics(ServerArgs),
    /// Print the HTTP API's OpenAPI document.
    Openapi,
}

/// How a command reaches the running server's API, and for which account.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's API (default: the URL the running server wrote in its data dir).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// An API key (default: the bootstrap admin key in the data dir).
    #[arg(
        long,
        global = true,
        env = "HERALD_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
    /// Act on this account (an admin or master key acting for another;
    /// default: the key's own).
    #[arg(long, global = true, value_name = "NAME")]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    #[command(subcommand)]
    pub action: WebhookAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum WebhookAction {
    /// The account's webhooks.
    List,
    /// Add a webhook; its signing secret is printed once.
    Create {
        /// An http:// or https:// URL of a public address.
        url: String,
        /// An event type to post (repeat for more; default: every type).
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        /// Events per post, 1 to 1000 (default 1: one JSON object a post).
        #[arg(long)]
        batch_size: Option<u32>,
    },
    /// A webhook and its state.
    Show { id: String },
    /// Remove a webhook.
    Delete { id: String },
    /// Post again to a webhook disabled after failing.
    Enable { id: String },
    /// Post a signed test event to the webhook's URL now; exit status 1
    /// when it does not answer 2xx.
    Test { id: String },
    /// The webhook's last posts, newest first.
    Deliveries { id: String },
    /// Post everything from one of the last posts again.
    Resend { id: String, delivery: i64 },
}

#[derive(Debug, Args)]
pub struct MessageArgs {
    #[command(subcommand)]
    pub action: MessageAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum MessageAction {
    /// Each recipient's state and every event (answers, bounces, opens).
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The decision for one answer, and the rule that made it.
    Test {
        /// The answer as a server gives it: "451 4.7.650 The mail server ...".
        answer: String,
        /// connect, greeting, ehlo, starttls, mail, rcpt, data, end_of_data, dns.
        #[arg(long)]
        phase: Option<String>,
        /// The recipient's domain (its provider is found from it).
        #[arg(long, default_value = "example.net")]
        domain: String,
        /// The sender's domain.
        #[arg(long)]
        sender_domain: Option<String>,
        /// The destination's name, when the domain alone does not tell it
        /// (a domain hosted by Google: --provider google).
        #[arg(long)]
        provider: Option<String>,
        /// Which attempt this answer was for (the retry ladder's step).
        #[arg(long, default_value_t = 1)]
        attempt: u16,
    },
    /// Every rule in force, the configured ones first.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Prune now; prints how many rows of each kind went.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum DmarcCommand {
    /// Import reports from files and folders (recursively): XML, gzip, raw
    /// zlib, zip, JSON (TLS reports), emails (every report attached) and
    /// mbox files, found by content. The same report twice is stored once;
    /// files that are no report, and the attachments of an email that could
    /// not be read, are kept as broken reports with their error.
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Files read at once (default: one per CPU).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// A domain's reports over a window (the last 30 days, or --since and
    /// --until, last year's included): volume and pass rates by day,
    /// reporter and source (each labelled), what enforcing would block, the
    /// next policy step, and the failure reports that arrived in it.
    Summary {
        domain: String,
        /// The window, in days before --until or now (default 30, at most
        /// 366). Not with --since.
        #[arg(long)]
        days: Option<u32>,
        /// The window's start: a date (2025-03-01, midnight UTC) or an RFC
        /// 3339 time (2025-03-01T08:00:00Z). The window is at most 366 days.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// The window's end, left out: a date or an RFC 3339 time (default
        /// now). `--since 2025-01-01 --until 2025-02-01` is January.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Sources listed (largest first; --json lists all).
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Print every source as CSV instead (the columns of
        /// GET /api/v1/dmarc/sources/export).
        #[arg(long, conflicts_with = "top")]
        csv: bool,
    },
    /// Stored reports, oldest first; --broken lists the ones that could
    /// not be read, with their errors.
    Reports {
        #[arg(long)]
        domain: Option<String>,
        /// aggregate, failure or tlsrpt.
        #[arg(long)]
        kind: Option<String>,
        /// Reports whose own period (a failure report: when it arrived,
        /// not when it was imported) ends at or after this: a date
        /// (2025-03-01, midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "TIME", conflicts_with = "broken")]
        since: Option<String>,
        /// Reports whose own period begins before this: a date or an RFC
        /// 3339 time.
        #[arg(long, value_name = "TIME", conflicts_with = "broken")]
        until: Option<String>,
        #[arg(long)]
        broken: bool,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Lint SPF, DMARC, DKIM and MX records; exit status 1 when an error or
    /// critical finding is found.
    Dns {
        domain: String,
        /// A DKIM selector to check (repeat for more), beside the ones
        /// Herald manages for the domain.
        #[arg(long)]
        selector: Vec<String>,
    },
    /// List approved senders that today's rule would refuse: domains another
    /// brand verified (their mail is refused), or that no brand verified.
    /// Exit status 1 when an approval names another brand's domain.
    Senders,
    /// Check an IP address, a network (CIDR: sampled) or a domain against
    /// the configured blocklists now; exit status 1 when a list names it.
    Blocklists { target: String },
}

#[derive(Debug, Subcommand)]
pub enum BlocklistsCommand {
    /// Listings, newest first: every one, or an account's targets'.
    List {
        /// Only the targets watched for this account.
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Only listings that have not ended.
        #[arg(long)]
        active: bool,
        /// Only this address or domain.
        #[arg(long)]
        target: Option<String>,
    },
    /// Ask the running server to run the scheduled check now, and wait.
    Run {
        /// The server's API (default: the URL the running server wrote in its data dir).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// An admin API key (default: the bootstrap admin key in the data dir).
        #[arg(long, env = "HERALD_API_KEY", hide_env_values = true, value_name = "KEY")]
        api_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// An account's alerts, newest first (open ones unless --state says).
    List {
        #[command(flatten)]
        account: AccountArg,
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
        /// Only this kind (blocklist, bounce_rate, webhook_disabled, ...).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Acknowledge an alert: someone is on it (it stays open until its
    /// condition ends).
    Ack {
        id: String,
        #[command(flatten)]
        account: AccountArg,
    },
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// hour or day.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// account, stream, sender-domain, ip or receiving-domain.
    #[arg(long)]
    pub group: Option<String>,
    /// From this time on: RFC 3339, or a duration ago such as 48h (default
    /// 30 days, 7 with --by hour).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// List suppressed addresses, by address.
    List {
        #[command(flatten)]
        account: AccountArg,
        /// Only addresses containing this.
        #[arg(long)]
        search: Option<String>,
        /// Only entries with this reason (hard_bounce, soft_bounces, complaint, unsubscribe, manual, import).
        #[arg(long)]
        reason: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Suppress an address.
    Add {
        #[command(flatten)]
        account: AccountArg,
        address: String,
        /// Why, in words (default: manual).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Whether mail to an address is stopped, and by which entry (the
    /// account's or its brand's).
    Show {
        #[command(flatten)]
        account: AccountArg,
        address: String,
    },
    /// Remove an address from the list.
    Remove {
        #[command(flatten)]
        account: AccountArg,
        address: String,
    },
    /// Import a CSV file: a header with an address (or email) column and
    /// optionally reason, or one address per line. Bad lines are listed on
    /// standard error (number and why) and the good ones imported; exit
    /// status 1 when any line was bad.
    Import {
        #[command(flatten)]
        account: AccountArg,
        file: PathBuf,
        /// Import nothing if any line is bad.
        #[arg(long)]
        strict: bool,
    },
    /// Write the list as CSV (RFC 4180; cells a spreadsheet would run as
    /// formulas start with ') to standard output.
    Export {
        #[command(flatten)]
        account: AccountArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Classify returned messages: one line per recipient with file, index,
    /// reason, status, reply code, hard and the decoder that recognised the
    /// message (tab-separated). Takes files, folders (read recursively) and
    /// mbox files (each message is `FILE#N`).
    Classify {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Files read and classified at once (default: the number of CPUs).
        #[arg(long)]
        jobs: Option<usize>,
    },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// The sender: an address or "Name <address>" (with --file, the
    /// envelope sender; the file's From header when omitted).
    #[arg(long)]
    pub from: Option<String>,
    /// A recipient (repeat for more).
    #[arg(long, required = true)]
    pub to: Vec<String>,
    #[arg(long)]
    pub cc: Vec<String>,
    #[arg(long)]
    pub bcc: Vec<String>,
    #[arg(long)]
    pub reply_to: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// The text part (made from --html when only that is given).
    #[arg(long)]
    pub text: Option<String>,
    #[arg(long)]
    pub html: Option<String>,
    /// A complete message to send as it is (RFC 5322, UTF-8).
    #[arg(long, value_name = "EML", conflicts_with_all = ["subject", "text", "html", "attach", "reply_to"])]
    pub file: Option<std::path::PathBuf>,
    /// Attach a file (repeat for more).
    #[arg(long, value_name = "FILE")]
    pub attach: Vec<std::path::PathBuf>,
    /// transactional (the default) or a bulk stream such as newsletter.
    #[arg(long)]
    pub stream: Option<String>,
    /// A label that comes back in every event (repeat for more).
    #[arg(long)]
    pub tag: Vec<String>,
    /// KEY=VALUE that comes back in every event (repeat for more).
    #[arg(long, value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Makes the command safe to repeat: the server sends once per key.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// The server's API (default: the URL the running server wrote in its data dir).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// An API key (default: the bootstrap admin key in the data dir).
    #[arg(long, env = "HERALD_API_KEY", hide_env_values = true, value_name = "KEY")]
    pub api_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Register a domain: makes its DKIM keys and prints every record to publish.
    Add {
        domain: String,
        #[command(flatten)]
        account: AccountArg,
    },
    /// An account's domains.
    List {
        #[command(flatten)]
        account: AccountArg,
    },
    /// A domain's keys and records.
    Show {
        domain: String,
    },
    /// Check every record against live DNS (fails unless all are as expected).
    Verify {
        domain: String,
    },
    /// Start a DKIM rotation: new selectors to publish beside the current ones.
    Rotate {
        domain: String,
    },
    /// Retire the keys a rotation replaced.
    Retire {
        domain: String,
    },
    Delete {
        domain: String,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub account: AccountArg,
    /// Only these types, comma-separated (e.g. bounced,deferred).
    #[arg(long = "type", value_name = "TYPES")]
    pub kind: Option<String>,
    #[arg(long)]
    pub recipient: Option<String>,
    /// Only this message's events.
    #[arg(long, value_name = "ID")]
    pub message: Option<String>,
    /// From this time on: RFC 3339, or a duration ago such as 1h.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events of messages with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only events of messages with this metadata, as key=value.
    #[arg(long, value_name = "KEY=VALUE")]
    pub meta: Option<String>,
    /// At most this many (before --follow takes over).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    /// Keep printing events as they come, until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Print CSV (the columns of GET /api/v1/events/export) instead.
    #[arg(long, conflicts_with = "follow")]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Messages waiting for delivery.
    List {
        /// Only messages with a recipient bound for this destination (a
        /// provider's name such as google, or a key from `queue destinations`).
        #[arg(long)]
        destination: Option<String>,
    },
    /// One message and each recipient's state.
    Show { id: String },
    /// Try every pending recipient now.
    Retry { id: String },
    /// Destinations and their state: normal, backed off until T, suspended
    /// by rule R.
    Destinations,
    /// Warm-up progress of each source address and sending domain, per
    /// provider: day of the plan, today's caps, counts and headroom.
    Warmup,
    /// Give up on every pending recipient (soft bounce, with events).
    Bounce { id: String },
    /// Remove the message without notice.
    Purge { id: String },
    /// Deliver a message held for its spam score (an admin key only).
    Release { id: String },
    /// Drop a message held for its spam score (`dropped` events).
    Drop { id: String },
    /// A day's TLS-RPT counts per recipient domain with an MTA-STS policy
    /// (an admin key only).
    TlsReports {
        /// The UTC day, YYYY-MM-DD (default today).
        #[arg(long)]
        day: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a commented config with every key and its default.
    Init {
        /// Where to write it.
        #[arg(long, default_value = "herald.toml")]
        path: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Validate the config and print the effective values.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id.
    Create {
        name: String,
        /// Make it a sub-account of this master.
        #[arg(long, value_name = "MASTER")]
        parent: Option<String>,
    },
    /// List accounts.
    List {
        /// Only the sub-accounts of this master.
        #[arg(long, value_name = "MASTER")]
        parent: Option<String>,
    },
    Show {
        name: String,
    },
    /// Refuse the account's keys and credentials until reactivated.
    Suspend {
        name: String,
    },
    Reactivate {
        name: String,
    },
    /// Change an account's settings.
    Set {
        name: String,
        /// Add an open pixel to the HTML of bulk mail.
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        track_opens: Option<bool>,
        /// Send links in the HTML of bulk mail through the click tracker.
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        track_clicks: Option<bool>,
        /// Hard bounces of an address within 30 days that suppress it.
        #[arg(long, value_name = "N")]
        hard_bounces: Option<u32>,
        /// Soft bounces of an address within 24 hours that suppress it.
        #[arg(long, value_name = "N")]
        soft_bounces: Option<u32>,
        /// Forward people's replies to bulk mail to this address ("" stops).
        #[arg(long, value_name = "ADDRESS")]
        reply_forward: Option<String>,
        /// Post people's replies to bulk mail to this URL as JSON ("" stops).
        #[arg(long, value_name = "URL")]
        reply_url: Option<String>,
        /// Alert when the last 24 hours' bounce rate is over this percentage.
        #[arg(long, value_name = "PERCENT")]
        bounce_alert: Option<f64>,
        /// Alert when the last 24 hours' complaint rate is over this percentage.
        #[arg(long, value_name = "PERCENT")]
        complaint_alert: Option<f64>,
        /// Recipients a UTC day the account may send (0 removes the quota);
        /// over it, mail is refused with 452 / 429 until midnight UTC.
        #[arg(long, value_name = "N")]
        daily_quota: Option<u32>,
        /// Recipients a minute the account may send (0 removes the limit).
        #[arg(long, value_name = "PER_MINUTE")]
        rate: Option<u32>,
        /// The spam score (spamd) over which the account's mail is held
        /// (1 to 1000; default `[spamd] threshold`).
        #[arg(long, value_name = "SCORE")]
        spam_threshold: Option<f64>,
        /// Mail the account's alerts to this address ("" stops).
        #[arg(long, value_name = "ADDRESS")]
        alert_email: Option<String>,
        /// A stream's own sending domain, one the brand registered: its mail
        /// is DKIM-signed and bounces in it (`newsletter=news.example.com`;
        /// `newsletter=` takes it away). Repeatable.
        #[arg(long = "stream-domain", value_name = "STREAM=DOMAIN")]
        stream_domains: Vec<String>,
    },
    /// Make a sub-account a master account.
    Promote {
        name: String,
    },
    /// Delete an account with its keys, credentials and senders.
    Delete {
        name: String,
    },
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

#[derive(Debug, Args)]
pub struct AccountArg {
    /// The account to act on.
    #[arg(long, value_name = "NAME")]
    pub account: String,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user; without --password one is chosen and
    /// printed once.
    Create {
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        email: String,
        /// 10 to 256 characters (visible to other local users in the
        /// process list: prefer --password-stdin).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// An operator user: acts on every account and releases held mail.
        #[arg(long)]
        operator: bool,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
    },
    /// Delete a user by id or e-mail address; its sessions end.
    Delete {
        #[command(flatten)]
        account: AccountArg,
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it once.
    Create {
        #[command(flatten)]
        account: AccountArg,
        /// An admin key: acts on every account and creates masters.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        label: Option<String>,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
    },
    /// Revoke a key by id or prefix.
    Revoke {
        #[command(flatten)]
        account: AccountArg,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Create a credential and print its username and password once.
    Create {
        #[command(flatten)]
        account: AccountArg,
        #[arg(long)]
        label: Option<String>,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
    },
    /// Revoke a credential by id or username.
    Revoke {
        #[command(flatten)]
        account: AccountArg,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SenderCommand {
    /// Approve an address (user@example.com) or a domain (@example.com).
    /// The account's brand must have registered and verified the domain
    /// (or a parent of it), unless --override is given (logged).
    Add {
        #[command(flatten)]
        account: AccountArg,
        sender: String,
        /// Approve although the brand has not verified the domain.
        #[arg(long = "override")]
        force: bool,
    },
    List {
        #[command(flatten)]
        account: AccountArg,
    },
    Remove {
        #[command(flatten)]
        account: AccountArg,
        sender: String,
    },
}
