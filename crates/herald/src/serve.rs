//! `herald serve`: open the store and the spool, bootstrap on first start,
//! start the delivery engine and every listener, serve until a signal, then
//! stop in order — listeners first, then deliveries, then the event
//! pipeline, then the spool — so nothing accepted is left half-written.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_accounts::Accounts;
use herald_dns::{HickoryResolver, Resolver, Settings};
use herald_events::{EventPipeline, Suppressor};
use herald_http::{AppState, HttpOptions, Tracker};
use herald_mta::Mta;
use herald_smtp_server::{AuthThrottle, ConnectionLimiter, Listener, ListenerKind, SessionConfig, SessionContext};
use herald_spool::{Spool, SpoolOptions};
use herald_types::EventSink;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::queue_control::SpoolQueue;
use crate::{output, tls};
use herald_intake::{Acceptor, HeraldPreparer, Inbound, SmtpIngress};

/// The account the first start creates, named in the docs and in
/// `[[smtp.relay_networks]]` examples.
pub const BOOTSTRAP_ACCOUNT: &str = "main";
/// Where the bootstrap admin key is saved (mode 0600) beside the data.
pub const BOOTSTRAP_KEY_FILE: &str = "bootstrap-admin-key";
/// Where the running server writes its API's URL, for `herald queue`.
pub const API_URL_FILE: &str = "api-url";
/// Where mail to postmaster@ and abuse@ is kept, in the data dir.
pub const MAILBOX_DIR: &str = "mailbox";
/// The file a change of an account's status is announced in (by the CLI or
/// the server), so the server's remembered standings end at once.
pub const ACCOUNT_SIGNAL_FILE: &str = "account-changes";
/// The spool's folder in the data dir.
const SPOOL_DIR: &str = "spool";
/// How often histogram summaries are compacted for `/metrics`.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// How often expired idempotency keys are deleted.
const IDEMPOTENCY_PURGE: Duration = Duration::from_secs(3600);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn make_data_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))
}

/// Binds `addr` for the config key `key`, with an error a user can act on.
async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied && addr.port() < 1024 {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port, or [] to turn the listener off)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr} ({key}): {e}{hint}")
    })
}

/// Where requests to the server's own API go from this machine.
fn local_url(proto: &str, bound: SocketAddr) -> String {
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        bound.ip().to_string()
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    format!("{proto}://{host}:{}", bound.port())
}

fn session_config(config: &Config) -> SessionConfig {
    let s = &config.smtp;
    SessionConfig {
        hostname: config.hostname.clone(),
        max_message_size: s.max_message_size,
        max_recipients: s.max_recipients,
        max_errors: s.max_errors,
        command_timeout: s.command_timeout,
        data_timeout: s.data_timeout,
        allow_auth_without_tls: s.allow_auth_without_tls,
        ..SessionConfig::default()
    }
}

pub(crate) fn resolver(config: &Config) -> anyhow::Result<Arc<dyn Resolver>> {
    resolver_with(config, Settings::default())
}

/// A resolver on the configured name servers (or the system's).
fn resolver_with(config: &Config, settings: Settings) -> anyhow::Result<Arc<dyn Resolver>> {
    let resolver = if config.dns_servers.is_empty() {
        HickoryResolver::system(settings)
    } else {
        HickoryResolver::with_servers(&config.dns_servers, settings)
    };
    Ok(Arc::new(resolver.context("cannot set up the DNS resolver")?))
}

/// What the blocklist monitor watches: the configured lists, the pools'
/// addresses (each also the accounts' it is mapped to), the platform's own
/// domains, with the bootstrap account as the operator.
pub(crate) fn monitor_settings(config: &Config) -> herald_monitor::Settings {
    let operator = herald_types::AccountName::parse(BOOTSTRAP_ACCOUNT).unwrap_or_else(|_| unreachable!());
    let mut settings = herald_monitor::Settings::defaults(operator);
    settings.lists = config.blocklists.lists.clone();
    settings.interval = config.blocklists.interval;
    settings.pace = config.blocklists.pace;
    settings.max_samples = config.blocklists.max_samples;
    for pool in &config.delivery.pools.pools {
        let accounts: Vec<herald_types::AccountName> = pool
            .accounts
            .iter()
            .filter_map(|a| herald_types::AccountName::parse(a).ok())
            .collect();
        for source in &pool.sources {
            match settings.sending_ips.iter_mut().find(|(ip, _)| *ip == source.ip) {
                Some((_, mapped)) => mapped.extend(accounts.iter().cloned()),
                None => settings.sending_ips.push((source.ip, accounts.clone())),
            }
        }
    }
    let tracking_host = config.domains.tracking_host.clone();
    for d in [config.bounce_domain.clone(), config.hostname.clone(), tracking_host] {
        if herald_checks::normalize_domain(&d).is_some() && !settings.platform_domains.contains(&d) {
            settings.platform_domains.push(d);
        }
    }
    settings.return_path_label = config.domains.return_path_label.clone();
    settings.tracking_label = config.domains.tracking_label.clone();
    settings
}

/// The conditions the alert path watches beside rates and blocklists:
/// checked as often as rates (`[alerts] check_interval`); the certificate
/// Herald serves (the configured one or the self-signed one).
pub(crate) fn condition_settings(config: &Config) -> herald_monitor::conditions::ConditionSettings {
    let operator = herald_types::AccountName::parse(BOOTSTRAP_ACCOUNT).unwrap_or_else(|_| unreachable!());
    let mut settings = herald_monitor::conditions::ConditionSettings::defaults(operator);
    settings.interval = config.alerts.interval;
    settings.node.clone_from(&config.hostname);
    let c = &config.alert_conditions;
    settings.slow_interval = c.dmarc_interval;
    settings.dmarc_unknown_min = c.dmarc_unknown_min;
    settings.deferral_min = c.deferral_min;
    settings.deferral_share = c.deferral_share;
    settings.certificate_warning = c.certificate_warning;
    settings.certificates = vec![match &config.tls_files {
        Some((cert, _)) => cert.clone(),
        None => config.tls_dir().join("cert.pem"),
    }];
    settings
}

/// The blocklist checks' resolver: uncached, so a delisting is seen by the
/// next check (each run asks each name once anyway).
pub(crate) fn monitor_resolver(config: &Config) -> anyhow::Result<Arc<dyn Resolver>> {
    resolver_with(
        config,
        Settings {
            timeout: config.blocklists.pace.timeout.min(Duration::from_secs(5)),
            retries: 1,
            cache: false,
        },
    )
}

fn open_spool(dir: &Path, events: Arc<dyn EventSink>) -> anyhow::Result<Arc<Spool>> {
    Ok(Arc::new(
        Spool::open_with_events(dir, SpoolOptions::default(), Some(events))
            .with_context(|| format!("cannot open the spool in {}", dir.display()))?,
    ))
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    make_data_dir(&config)?;
    // Files made by versions without the owner-only rule are brought to it.
    crate::private_files::tighten(&config.data_dir);
    crate::private_files::tighten_sqlite(&config.storage_url);
    let cert = tls::ensure_cert(&config)?;
    if cert.created {
        tracing::info!(cert = %cert.cert.display(), "made a self-signed TLS certificate");
    }
    let tls_config = tls::server_config(&cert)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);

    let store = herald_store_sql::open(&config.storage_url).await.with_context(|| {
        format!(
            "cannot open the store at {}",
            crate::config::redact(&config.storage_url)
        )
    })?;
    tracing::info!(backend = store.backend(), "store open");
    let outbound = Arc::new(herald_outbound::Policy::new(config.outbound_allow.clone()));
    let secret = crate::secret::load_or_create(&config.secret_file)?;
    let accounts = Accounts::new(store.clone())
        .with_outbound(outbound.clone())
        .with_platform_secret(&secret)
        .with_change_signal(config.data_dir.join(ACCOUNT_SIGNAL_FILE));

    let domains = Arc::new(crate::domain_cmd::service(&config, store.clone(), &secret)?);
    let keys = herald_tracking::Keyring::new(&secret);
    let bootstrapped = accounts.bootstrap(BOOTSTRAP_ACCOUNT).await?;
    if let Some((account, key)) = &bootstrapped {
        let path = config.data_dir.join(BOOTSTRAP_KEY_FILE);
        tls::write_private(&path, format!("{}\n", key.secret).as_bytes())?;
        tracing::info!(account = %account.name, prefix = %key.record.prefix, file = %path.display(),
            "first start: created the master account and an admin API key");
    }

    let metrics = Arc::new(
        crate::metrics::buckets(PrometheusBuilder::new())?
            .install_recorder()
            .context("cannot install the metrics recorder")?,
    );
    metrics::gauge!("herald_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });

    // Old history goes daily; the first run shortly after start.
    let (retention_stop, retention_rx) = watch::channel(false);
    crate::retention::spawn_daily(store.clone(), config.retention.clone(), retention_rx);

    // Idempotency keys past their window are forgotten.
    let purge = store.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDEMPOTENCY_PURGE);
        loop {
            tick.tick().await;
            let before = time::OffsetDateTime::now_utc() - herald_http::IDEMPOTENCY_WINDOW;
            match purge.purge_idempotency(before).await {
                Ok(n) if n > 0 => tracing::debug!(forgotten = n, "idempotency keys purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
            }
        }
    });

    // The mail path: events, spool, delivery. Stored events pass the
    // suppression stage, which keeps the lists, and wake the webhooks.
    let wake = Arc::new(tokio::sync::Notify::new());
    let events = EventPipeline::with_stages(
        store.clone(),
        vec![
            Suppressor::new(store.clone()),
            Arc::new(herald_webhooks::Wake(wake.clone())),
        ],
    );
    let sink: Arc<dyn EventSink> = events.clone();
    // The spool journals the events of what it records and hands them to
    // the pipeline once durable (first those a crash left unreleased);
    // the pipeline releases them once stored and staged.
    let spool = open_spool(&config.data_dir.join(SPOOL_DIR), sink.clone())?;
    let journal: Arc<dyn herald_types::EventJournal> = spool.clone();
    events.attach_journal(Arc::downgrade(&journal));
    drop(journal);
    tracing::info!(queued = spool.len(), replayed = spool.unreleased_events(), "spool open");
    // Whatever a crash left unstored is stored before anyone is served
    // (the inbound MX attributes bounces by what acceptance recorded).
    if !events.flush().await {
        anyhow::bail!("the event pipeline stopped before the journal was replayed");
    }
    let preparer = HeraldPreparer::new(
        keys.clone(),
        domains.clone(),
        accounts.clone(),
        config.public_url.clone(),
    );
    let resolver = resolver(&config)?;
    let dmarc = Arc::new(herald_dmarc::Dmarc::new(
        store.clone(),
        resolver.clone(),
        config.dmarc_networks.clone(),
    ));
    let mta = Mta::with_preparer(
        config.delivery.clone(),
        spool.clone(),
        resolver.clone(),
        sink.clone(),
        Arc::new(preparer),
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    crate::metrics::sample_spool(spool.clone(), stop_rx.clone());
    let grace = config.shutdown_timeout;
    let render: herald_webhooks::Render =
        Arc::new(|e, account| serde_json::to_value(herald_http::views::event(e, account)).unwrap_or_default());
    let mut taking = Acceptor::new(
        config.hostname.clone(),
        accounts.clone(),
        spool.clone(),
        Arc::new(mta.clone()),
        sink.clone(),
        config.smtp.max_message_size,
    );
    if let Some(spamd) = &config.spamd {
        tracing::info!(address = %spamd.address, threshold = spamd.threshold, "messages are scored by spamd");
        taking = taking.with_spamd(spamd.clone());
    }
    let acceptance = Arc::new(taking);
    // Every alert goes one way: recorded, an `alert` event, the webhooks,
    // and mail to the account's alert address when it has one.
    let alerter = herald_events::alerts::Alerter::new(store.clone(), sink.clone()).with_mail(Arc::new(
        herald_intake::alert_mail::AlertMailer::new(acceptance.clone(), &config.bounce_domain),
    ));
    let webhooks = herald_webhooks::Dispatcher::new(
        store.clone(),
        config.webhooks.clone(),
        render,
        alerter.clone(),
        wake,
        outbound.clone(),
    )
    .context("cannot set up the webhook client")?;
    let tester: Arc<dyn herald_http::WebhookTester> = Arc::new(crate::queue_control::WebhookTests(webhooks.clone()));
    let webhooks = tokio::spawn(webhooks.run(stop_rx.clone()));
    tokio::spawn(herald_events::reputation::run_alerts(
        store.clone(),
        alerter.clone(),
        config.alerts.clone(),
        stop_rx.clone(),
    ));
    let monitor = Arc::new(herald_monitor::Monitor::new(
        store.clone(),
        monitor_resolver(&config)?,
        alerter.clone(),
        monitor_settings(&config),
    ));
    tokio::spawn(monitor.clone().run(stop_rx.clone()));
    let conditions = Arc::new(herald_monitor::conditions::Conditions::new(
        store.clone(),
        monitor_resolver(&config)?,
        dmarc.clone(),
        alerter.clone(),
        Some(Arc::new(crate::queue_control::WarmupCaps {
            mta: mta.clone(),
            pools: config
                .delivery
                .pools
                .pools
                .iter()
                .map(|p| (p.name.clone(), p.accounts.clone()))
                .collect(),
        })),
        condition_settings(&config),
    ));
    tokio::spawn(conditions.clone().run(stop_rx.clone()));
    let delivery = {
        let mta = mta.clone();
        let rx = stop_rx.clone();
        tokio::spawn(async move { mta.run(rx, grace).await })
    };

    // SMTP listeners.
    let inbound = Arc::new(Inbound::new(
        keys.clone(),
        store.clone(),
        events.clone(),
        &config.domains.bounce_domain,
        acceptance.clone(),
        dmarc.clone(),
        &herald_intake::InboundSettings {
            forwards_per_hour: config.inbound.forwards_per_hour,
            outbound: outbound.clone(),
            local_domains: vec![config.hostname.clone()],
            mailbox: Some(config.data_dir.join(MAILBOX_DIR)),
            unreadable_per_ip: config.inbound.unreadable_per_ip,
            unreadable_total: config.inbound.unreadable_total,
        },
    )?);
    let ingress = Arc::new(SmtpIngress::new(
        acceptance.clone(),
        inbound,
        accounts.clone(),
        config.smtp.relay_networks.clone(),
    ));
    let context = Arc::new(SessionContext {
        config: Arc::new(session_config(&config)),
        ingress,
        tls: Some(acceptor.clone()),
        throttle: AuthThrottle::new(
            config.smtp.auth_failure_limit,
            config.smtp.auth_failure_limit_per_ip,
            config.smtp.auth_failure_window,
        ),
    });
    let limiter = ConnectionLimiter::new(config.smtp.max_connections_per_ip, config.smtp.max_connections);
    let mut listeners = JoinSet::new();
    let kinds = [
        (ListenerKind::Submission, &config.smtp.submission, "smtp.submission"),
        (
            ListenerKind::SubmissionTls,
            &config.smtp.submission_tls,
            "smtp.submission_tls",
        ),
        (ListenerKind::Inbound, &config.smtp.inbound, "smtp.inbound"),
    ];
    for (kind, addrs, key) in kinds {
        for addr in addrs {
            let tcp = bind(*addr, key).await?;
            tracing::info!(proto = %kind.as_str(), addr = %tcp.local_addr()?, "listening");
            let listener = Listener { kind, tcp };
            listeners.spawn(herald_smtp_server::serve(
                listener,
                context.clone(),
                limiter.clone(),
                stop_rx.clone(),
                grace,
            ));
        }
    }

    // HTTP. Opens and clicks are coalesced per reader and released (or
    // shed, when events lag) as their window closes.
    let tracker = Arc::new(
        Tracker::new(keys.clone(), sink.clone(), config.machines.clone(), store.clone())
            .with_durable_events(spool.clone())
            .with_coalesce_window(config.coalesce_window),
    );
    let engagement = tokio::spawn(tracker.clone().run(stop_rx.clone()));
    let state = AppState {
        accounts,
        metrics: Some(metrics),
        queue: Some(Arc::new(SpoolQueue {
            spool: spool.clone(),
            mta: mta.clone(),
        })),
        domains: Some(domains.clone()),
        tracker: Some(tracker.clone()),
        submit: Some(acceptance),
        dmarc: Some(dmarc),
        resolver: Some(resolver),
        auth_failures: Arc::new(herald_http::AuthFailures::new(config.http_auth_failure_limit as usize)),
        monitor: Some(monitor.clone()),
        webhook_tester: Some(tester),
    };
    let app = herald_http::router(
        state.clone(),
        HttpOptions {
            request_timeout: config.request_timeout,
            send_body_limit: herald_http::send_body_limit(config.smtp.max_message_size),
            secure_cookies: config.http_tls || config.public_url.starts_with("https://"),
            public_url: Some(config.public_url.clone()),
            trusted_proxies: config.trusted_proxies.clone(),
            metrics_token: config.metrics_token.clone(),
            metrics_elsewhere: config.metrics_listen.is_some(),
        },
    );
    let listener = bind(config.http_listen, "http.listen").await?;
    let proto = if config.http_tls { "https" } else { "http" };
    let bound = listener.local_addr()?;
    tracing::info!(proto = %proto, addr = %bound, "listening");
    let url = local_url(proto, bound);
    std::fs::write(config.data_dir.join(API_URL_FILE), format!("{url}\n")).context("cannot write the API URL file")?;
    if let Some((account, key)) = bootstrapped {
        output::bootstrap_banner(
            account.name.as_str(),
            &key.secret,
            &config.data_dir.join(BOOTSTRAP_KEY_FILE),
            &url,
        );
    }
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http_tls = config.http_tls.then_some(acceptor);
    let http = tokio::spawn(herald_http::serve(listener, http_tls, app, stopped(stop_rx.clone())));
    if config.metrics_listen.is_none() && config.metrics_token.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(addr = %bound,
            "/metrics is open to anyone who reaches the API; set [metrics] listen (a listener of its own) or [metrics] token");
    }
    if let Some(addr) = config.metrics_listen {
        let listener = bind(addr, "metrics.listen").await?;
        tracing::info!(proto = %"metrics", addr = %listener.local_addr()?, "listening");
        let app = herald_http::metrics_router(state, config.metrics_token.as_deref());
        tokio::spawn(herald_http::serve(listener, None, app, stopped(stop_rx.clone())));
    }

    shutdown_signal().await;
    tracing::info!(grace = ?grace, "shutting down");
    let _ = stop_tx.send(true);
    let _ = retention_stop.send(true);
    // Listeners let open sessions finish (each within the grace period).
    while listeners.join_next().await.is_some() {}
    if let Ok(Ok(Err(e))) = tokio::time::timeout(grace, http).await {
        tracing::warn!(error = %e, "http server ended with an error");
    }
    let _ = delivery.await;
    // The opens and clicks still held are released into the pipeline.
    let _ = engagement.await;
    let _ = webhooks.await;
    events.close(grace).await;
    // The spool's writer syncs what is pending before it stops.
    let _ = tokio::task::spawn_blocking(move || spool.close()).await;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}
