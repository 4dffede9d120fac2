//! kolokol: the contact center. This file only wires the crates together.

mod config;
mod tls;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use config::Config;
use kolokol_crm::queues::StoredState;
use kolokol_crm::{bindings, journal, NewUser, RoutingTable, Store, UserDirectory};
use kolokol_engine::browser::BrowserMedia;
use kolokol_engine::call::leg::LocalAddresses;
use kolokol_engine::call::{CallControl, Context as CallContext};
use kolokol_engine::clock::now_ms;
use kolokol_engine::event::{EventBus, LocalBus};
use kolokol_engine::queue::OperatorState;
use kolokol_engine::registrar::{Location, Registrar};
use kolokol_engine::service::{CallPlane, SipService};
use kolokol_engine::transport::{self, Connections, Sender, Transport};
use kolokol_media::relay::{Media, MediaConfig, MediaEvent};
use kolokol_media::webrtc::{WebRtc, WebRtcConfig};
use kolokol_web::{Guard, GuardConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "kolokol", version, about = "kolokol contact center")]
struct Cli {
    /// Configuration file (see config/default.toml for every key).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the contact center (the default).
    Serve,
    /// Manage users.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// The contact-center reports' aggregates.
    Reports {
        #[command(subcommand)]
        action: ReportsAction,
    },
}

#[derive(Subcommand)]
enum ReportsAction {
    /// Recompute the aggregates from the raw event log, from a day on (in `crm.time_zone`;
    /// default: the first day of the log). Run it after changing `crm.time_zone`.
    Rebuild {
        /// `YYYY-MM-DD`
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user: `kolokol user add --login ivanova --name "Ирина Иванова" --extension 2001 --sip-password …`
    Add {
        #[arg(long)]
        login: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        extension: Option<String>,
        #[arg(long)]
        sip_password: Option<String>,
        /// Web password; generated and printed when omitted.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        admin: bool,
        /// May create partners.
        #[arg(long)]
        contacts: bool,
    },
    /// List users.
    List,
}

#[derive(Subcommand)]
enum TokenAction {
    /// Print a new bearer token for scripts.
    Create {
        #[arg(long)]
        user: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    // Everything kolokol writes — the database, the TLS key, recordings, card files — is
    // its own user's alone: none of it is for other accounts on the machine to read.
    // SAFETY: umask only sets the process's file mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let cli = Cli::parse();
    let default = PathBuf::from("config/default.toml");
    let file = cli
        .config
        .clone()
        .or_else(|| default.exists().then_some(default));
    let config = Config::load(file.as_deref())?;
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log.clone());
    // Logs go to stderr: CLI commands print their results (tokens, passwords) on stdout.
    // PostgreSQL's notices ("already exists, skipping" on every migration) are noise.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "{filter},sqlx::postgres::notice=warn"
        )))
        .with_writer(std::io::stderr)
        .init();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let mut store = Store::open(&config.database_url()).await?;
    store.country = config.crm.default_country.clone();
    store.files_dir = config.data_dir.join("files");
    store.max_file_bytes = config.crm.max_file_mb << 20;
    store
        .set_time_zone(&config.crm.time_zone)
        .with_context(|| format!("crm.time_zone = {:?}", config.crm.time_zone))?;
    store.smtp = config.smtp.clone();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, store).await,
        Command::User {
            action:
                UserAction::Add {
                    login,
                    name,
                    extension,
                    sip_password,
                    password,
                    admin,
                    contacts,
                },
        } => {
            let generated = password.is_none();
            let new = NewUser {
                login,
                name,
                extension,
                sip_password,
                password,
                admin,
                contacts,
                ..Default::default()
            };
            let (user, password) = store.create_user(&new, &config.registrar.realm).await?;
            println!("created user {} (id {})", user.login, user.id);
            if generated {
                println!("web password: {password}");
            }
            Ok(())
        }
        Command::User {
            action: UserAction::List,
        } => {
            for u in store.users().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.id,
                    u.login,
                    u.extension.unwrap_or_default(),
                    u.name
                );
            }
            Ok(())
        }
        Command::Token {
            action: TokenAction::Create { user },
        } => {
            let Some(u) = store.users().await?.into_iter().find(|u| u.login == user) else {
                bail!("no user with login {user:?}");
            };
            println!("{}", store.issue_token(u.id, "api").await?);
            Ok(())
        }
        Command::Reports {
            action: ReportsAction::Rebuild { from },
        } => {
            let from_ms = match from {
                Some(day) => kolokol_crm::values::midnight(day, store.time_zone)
                    .timestamp_millis()
                    .max(0) as u64,
                None => store.first_event_day().await?.unwrap_or(0),
            };
            let started = std::time::Instant::now();
            let events = store.rebuild_reports(from_ms).await?;
            println!(
                "rebuilt the reports' aggregates from {} ({events} events in {:.1} s)",
                chrono::DateTime::from_timestamp_millis(from_ms as i64)
                    .map(|t| t
                        .with_timezone(&store.time_zone)
                        .format("%Y-%m-%d")
                        .to_string())
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

/// The server secret keys nonces; kept in the database so restarts keep nonces valid.
async fn server_secret(store: &Store) -> Result<[u8; 32]> {
    let hex_secret = match store.setting("server_secret").await? {
        Some(s) => s,
        None => {
            let s = kolokol_crm::users::random_secret(32);
            store.set_setting("server_secret", &s).await?;
            s
        }
    };
    let bytes = hex::decode(hex_secret).context("server_secret is not hex")?;
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("server_secret is not 32 bytes"))
}

async fn first_run(store: &Store, realm: &str) -> Result<()> {
    if store.user_count().await? == 0 {
        let admin = NewUser {
            login: "admin".into(),
            name: "Administrator".into(),
            admin: true,
            ..Default::default()
        };
        let (_, password) = store.create_user(&admin, realm).await?;
        tracing::warn!("first run: created administrator login=admin password={password} (shown once; change it)");
    }
    Ok(())
}

fn addr(s: &str) -> Result<Option<SocketAddr>> {
    if s.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        s.parse()
            .with_context(|| format!("bad listen address {s:?}"))?,
    ))
}

async fn serve(config: Config, store: Store) -> Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let realm = config.registrar.realm.clone();
    first_run(&store, &realm).await?;
    let directory = Arc::new(UserDirectory::default());
    let accounts = directory.reload(&store, &realm).await?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let location = Arc::new(Location::new(Arc::new(bindings::BindingWriter(tx))));
    let saved = bindings::load(&store, now_ms()).await?;
    let restored = saved.len();
    location.restore(saved, now_ms());
    let writer = tokio::spawn(bindings::write_behind(store.clone(), rx));
    let registrar = Registrar::new(
        config.registrar.clone(),
        server_secret(&store).await?,
        directory.clone(),
        location.clone(),
    );
    let connections = Arc::new(Connections::new(config.sip.send_queue));
    let sender = Arc::new(Sender::new(connections.clone()));
    let routing = Arc::new(RoutingTable::default());
    routing.reload(&store).await?;

    // The event log: crash leftovers first, then the writer that appends before publishing.
    let interrupted = journal::close_interrupted(&store, now_ms()).await?;
    repair_recordings(&store).await?;
    let bus: Arc<dyn EventBus> = Arc::new(LocalBus::new(4096));
    let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
    let (journal_stop, journal_stopped) = tokio::sync::oneshot::channel();
    let journal_task = tokio::spawn(journal::run(
        store.dedicated().await?,
        events_rx,
        bus.clone(),
        journal_stopped,
    ));
    // The CRM follows the log: calls linked to partner cards (unknown numbers get one).
    tokio::spawn(kolokol_crm::partner_calls::run(store.clone(), bus.clone()));
    // Today's figures, kept as events are stored.
    let live_figures = Arc::new(kolokol_crm::reports::live::LiveFigures::new(
        store.time_zone,
    ));
    tokio::spawn(kolokol_crm::reports::live::run(
        store.clone(),
        bus.clone(),
        live_figures.clone(),
    ));

    let advertise = advertise_ip(&config.sip.advertise)?;
    let media_ip = match config.media.advertise.as_str() {
        "" => advertise,
        a => a.parse().context("media.advertise is not an IP address")?,
    };
    let (media_tx, mut media_rx) = tokio::sync::mpsc::unbounded_channel();
    let media = Media::new(
        MediaConfig {
            bind: config
                .media
                .bind
                .parse()
                .context("media.bind is not an IP address")?,
            advertise: media_ip,
            port_min: config.media.port_min,
            port_max: config.media.port_max,
            recordings: config.recordings_dir.clone(),
        },
        media_tx,
    )?;
    let media_bind: IpAddr = config.media.bind.parse()?;
    let gateway = WebRtc::start(WebRtcConfig {
        bind: SocketAddr::new(media_bind, config.media.webrtc_port),
        candidate: SocketAddr::new(media_ip, config.media.webrtc_port),
        alias_ip: if media_bind.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            media_bind
        },
        threads: 0,
    })
    .context("starting WebRTC media (media.webrtc_port)")?;
    tracing::info!(candidates = ?gateway.candidates(), "WebRTC media ready");
    let browser = Arc::new(BrowserMedia::new(gateway, media_bind));
    let port = |a: &str, default: u16| addr(a).ok().flatten().map_or(default, |a| a.port());
    let local = LocalAddresses {
        udp: SocketAddr::new(advertise, port(&config.sip.udp, 5060)),
        tcp: SocketAddr::new(advertise, port(&config.sip.tcp, 5060)),
        tls: SocketAddr::new(advertise, port(&config.sip.tls, 5061)),
    };
    let Some(language) = kolokol_media::prompts::Language::parse(&config.calls.language) else {
        bail!("calls.language must be \"ru\" or \"en\"");
    };
    let mut call_config = config.calls.clone();
    call_config.recordings = config.recordings_dir.clone();
    let control = CallControl::new(CallContext {
        config: call_config,
        local,
        dialplan: routing.clone(),
        location,
        media: Arc::new(media.clone()),
    });
    let mut control = control;
    restore_queues(&mut control, &store).await?;
    let sip = Arc::new(
        SipService::new(registrar)
            .with_admission(config.sip.overload_wait_ms)
            .with_calls(CallPlane {
                control: std::sync::Mutex::new(control),
                dialplan: routing.clone(),
                sender: sender.clone(),
                journal: events_tx,
                browser: Some(browser),
            }),
    );
    let tls_config = tls::server_config(&config.tls.cert, &config.tls.key, &config.data_dir)?;
    let max = config.sip.max_message_size;
    let header_read = std::time::Duration::from_secs(config.http.header_read_timeout_s.max(1));
    let stream_ctx = Arc::new(transport::stream::StreamContext::new(
        sip.clone(),
        connections.clone(),
        max,
        transport::stream::StreamLimits {
            total: config.sip.max_connections,
            per_source: config.sip.max_connections_per_source,
            first_message: std::time::Duration::from_secs(config.sip.first_message_timeout_s),
            idle: std::time::Duration::from_secs(config.sip.idle_timeout_s),
        },
    ));
    tracing::info!(interrupted, advertise = %advertise, "call control ready");
    tracing::info!(accounts, restored, realm = %realm, "registrar ready");

    if let Some(a) = addr(&config.sip.udp)? {
        let socket = std::net::UdpSocket::bind(a).with_context(|| format!("binding UDP {a}"))?;
        tracing::info!(addr = %socket.local_addr()?, "SIP UDP listening");
        sender.set_udp(socket.try_clone()?);
        transport::udp::spawn(socket, sip.clone(), max)?;
    }
    for (listen, tls) in [
        (&config.sip.tcp, None),
        (&config.sip.tls, Some(tls_config.clone())),
    ] {
        if let Some(a) = addr(listen)? {
            let listener = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding {a}"))?;
            tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "SIP stream listening");
            let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
            tokio::spawn(transport::stream::serve(
                listener,
                acceptor,
                stream_ctx.clone(),
            ));
        }
    }
    let state = kolokol_web::AppState {
        store: store.clone(),
        sip: sip.clone(),
        connections: connections.clone(),
        directory,
        routing,
        realm,
        metrics,
        max_message: max,
        prompts: (config.data_dir.join("prompts"), language),
        bus: bus.clone(),
        ice_servers: config.media.ice_servers.clone(),
        ws_keepalive: std::time::Duration::from_secs(config.sip.ws_keepalive_s.max(1)),
        notices: tokio::sync::broadcast::channel(1024).0,
        presence: Default::default(),
        guard: Arc::new(Guard::new(GuardConfig {
            allowed_origins: config.http.allowed_origins.clone(),
            trusted_proxies: ip_list("http.trusted_proxies", &config.http.trusted_proxies)?,
            metrics_from: ip_list("http.metrics_from", &config.http.metrics_from)?,
            login_per_source: config.http.login_per_source,
            login_per_account: config.http.login_per_account,
            password_checks: config.http.password_checks,
        })),
        live_figures,
    };
    tokio::spawn(kolokol_web::remind(state.clone()));
    if store
        .queues()
        .await?
        .iter()
        .any(|q| q.announce_every_ms.is_some())
    {
        kolokol_web::prepare_prompts(&state);
    }
    if let Some(a) = addr(&config.http.listen)? {
        let listener = tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("binding {a}"))?;
        tracing::info!(addr = %listener.local_addr()?, "HTTP listening (SIP over WebSocket at /sip)");
        let app = kolokol_web::router(state.clone(), Transport::Ws);
        let mut server = axum_server::from_tcp(listener.into_std()?);
        header_timeout(server.http_builder(), header_read);
        tokio::spawn(async move {
            if let Err(e) = server
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await
            {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        });
    }
    if let Some(a) = addr(&config.http.tls_listen)? {
        let rustls = axum_server::tls_rustls::RustlsConfig::from_config(tls_config);
        let app = kolokol_web::router(state.clone(), Transport::Wss);
        tracing::info!(addr = %a, "HTTPS listening (SIP over secure WebSocket at /sip)");
        let mut server = axum_server::bind_rustls(a, rustls);
        header_timeout(server.http_builder(), header_read);
        tokio::spawn(async move {
            if let Err(e) = server
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await
            {
                tracing::error!(error = %e, "HTTPS listener failed");
            }
        });
    }
    let (sweeper, guard) = (sip.clone(), state.guard.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            sweeper.sweep(now_ms());
            guard.sweep(now_ms());
        }
    });
    // Call control's clock: retransmissions (T1 = 500 ms) and timeouts.
    let clock = sip.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            clock.tick(now_ms());
        }
    });
    let (media_stop, mut media_stopped) = tokio::sync::oneshot::channel::<()>();
    let recordings = sip.clone();
    let media_task = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                e = media_rx.recv() => e,
                // Stopping: what is already queued, then done.
                _ = &mut media_stopped => {
                    while let Ok(e) = media_rx.try_recv() {
                        media_event(&recordings, e);
                    }
                    break;
                }
            };
            match event {
                Some(e) => media_event(&recordings, e),
                None => break,
            }
        }
    });
    tracing::info!("kolokol is running");
    shutdown_signal().await;
    drain(&sip, &media, config.shutdown.drain_s).await;
    // Recording events, then the journal: each writes what is queued, then stops.
    let _ = media_stop.send(());
    let _ = media_task.await;
    let _ = journal_stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), journal_task).await;
    writer.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Graceful shutdown: no new calls (503), running calls get `drain_s` to finish, then
/// are ended; recordings are closed.
async fn drain(sip: &SipService, media: &Media, drain_s: u64) {
    let Some(plane) = &sip.calls else {
        return;
    };
    let deadline = now_ms() + drain_s * 1000;
    let active = plane.step(|c, _| {
        c.drain(deadline);
        c.active_calls()
    });
    tracing::info!(active, drain_s, "draining: new calls get 503");
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tick.tick().await;
        let active = plane.step(|c, _| c.active_calls());
        // A moment past the deadline lets the BYEs of calls ended there go out.
        if active == 0 || now_ms() > deadline + 500 {
            break;
        }
    }
    media.shutdown().await;
}

/// A recording the media plane closed becomes an event of its call.
/// Queues and provider registrations from the database, and every operator back in the
/// state the event log last had for them: logged in (ready), paused with the same reason,
/// or offline.
/// A setting's list of IP addresses.
fn ip_list(setting: &str, list: &[String]) -> Result<Vec<IpAddr>> {
    list.iter()
        .map(|a| {
            a.parse()
                .with_context(|| format!("{setting}: {a:?} is not an IP address"))
        })
        .collect()
}

/// A client that does not finish a request's headers in time is disconnected (slowloris:
/// without this, trickling headers holds a connection and its task forever).
fn header_timeout(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    timeout: std::time::Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeout);
}

async fn restore_queues(control: &mut CallControl, store: &Store) -> Result<()> {
    let now = now_ms();
    control.set_queues(store.queues().await?, now);
    control.set_registrations(store.registration_targets().await?, now);
    let states = store.operator_states().await?;
    let mut out = kolokol_engine::call::Outputs::default();
    control.with_acd(now, &mut out, |acd, _| {
        for (operator, state) in states {
            let state = match state {
                StoredState::LoggedIn => OperatorState::Ready,
                StoredState::Paused(reason) => OperatorState::Paused { reason },
                StoredState::LoggedOut => OperatorState::Offline,
            };
            acd.restore(&operator, state, now);
        }
    });
    Ok(())
}

fn media_event(sip: &SipService, event: MediaEvent) {
    match event {
        MediaEvent::RecordingClosed { key, path, info } => {
            if let Some(plane) = &sip.calls {
                plane.step(|c, out| {
                    c.recording_finished(&key, path.display().to_string(), info, now_ms(), out)
                });
            }
        }
        MediaEvent::RecordingFailed { key, error } => {
            tracing::error!(call = %key, %error, "recording failed")
        }
    }
}

/// The IP to announce: configured, or the one the default route leaves from.
fn advertise_ip(configured: &str) -> Result<IpAddr> {
    if !configured.is_empty() {
        return configured
            .parse()
            .context("sip.advertise is not an IP address");
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // connect() on UDP sends nothing; it only picks the route.
    Ok(probe
        .connect("192.0.2.1:9")
        .and_then(|_| probe.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1])))
}

/// Recordings a crash left open get their WAV header fixed and their row completed.
async fn repair_recordings(store: &Store) -> Result<()> {
    for rec in store.unfinished_recordings().await? {
        match kolokol_media::recorder::repair(std::path::Path::new(&rec.path)) {
            Ok(info) => {
                store
                    .complete_recording(&rec.call_id, info.duration_ms, info.bytes, info.channels)
                    .await?;
                tracing::info!(call = %rec.call_id, path = %rec.path, duration_ms = info.duration_ms, "repaired recording");
            }
            Err(e) => {
                tracing::warn!(call = %rec.call_id, path = %rec.path, error = %e, "recording could not be repaired")
            }
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
