//! Assembly: builds the shared state from a [`Config`], binds both listeners and runs them
//! until shutdown. Tests and benches start an [`Edge`] in-process exactly like `main` does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::abuse::secret_scanning::{KeyError, SecretScanning};
use crate::abuse::webhook::{WebhookQueue, WebhookSettings};
use crate::admin::AdminKey;
use crate::config::Config;
use crate::ingest::cors::CorsPolicy;
use crate::opmetrics::{OpMetrics, UPKEEP_INTERVAL};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::ratelimit::global::GlobalLimits;
use crate::remote_write::Limits;
use crate::server::{self, Listener};
use crate::token::registry::Registry;
use crate::token::store::pg::PgStore;
use crate::token::store::{FileStore, StoreError};
use crate::usage::Usage;

/// Everything a request handler needs, behind one `Arc`.
pub struct AppState {
    pub config: Config,
    /// Tokens: the request path's cache and the control plane.
    pub registry: Registry,
    pub usage: Arc<Usage>,
    pub pipeline: Pipeline,
    pub admin_key: AdminKey,
    /// Preflight answers prepared from the config.
    pub cors: CorsPolicy,
    /// remote_write validation limits, from the config.
    pub rw_limits: Limits,
    /// Edge-wide operational metrics (not per token).
    pub op_metrics: OpMetrics,
    /// Abuse monitoring: signals, responses, events (SPEC §12).
    pub abuse: crate::abuse::Monitor,
    /// The console's embedded files and signed-in sessions.
    pub console: crate::console::Console,
    /// Cleared when shutdown starts, so `/readyz` takes the edge out of rotation first.
    pub ready: AtomicBool,
    /// Abuse events on their way to `abuse.webhook_url` (disabled when none is set).
    pub webhook: WebhookQueue,
    /// GitHub secret scanning's endpoint: keys, action, counters.
    pub secret_scanning: SecretScanning,
    /// App Check public keys for mobile tokens with attestation (re-read by a background task).
    pub app_check: crate::appcheck::KeyStore,
    /// Token limits shared by every edge through Redis (`limits.redis_url`); `None`: per edge.
    pub global_limits: Option<Arc<GlobalLimits>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("admin key: {0}")]
    AdminKey(std::io::Error),
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error("abuse.secret_scanning_keys_file: {0}")]
    SecretScanningKeys(#[from] KeyError),
    #[error("abuse.webhook_url: {0}")]
    WebhookUrl(String),
    #[error("TLS: {0}")]
    Tls(#[from] server::TlsError),
    #[error("cannot start the token store follower: {0}")]
    Follow(std::io::Error),
    #[error("limits.redis_url: {0}")]
    RedisUrl(redis::RedisError),
}

impl crate::token::follow::HasRegistry for AppState {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// A running edge.
pub struct Edge {
    state: Arc<AppState>,
    ingest_addr: SocketAddr,
    ops_addr: SocketAddr,
    admin_key_path: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    /// The certificate store, when TLS is on.
    tls: Option<server::Tls>,
}

impl Edge {
    pub async fn start(config: Config) -> Result<Edge, StartError> {
        let data_dir = config.data_dir.0.clone();
        let tls = server::Tls::from_config(&config.server)?;
        let (admin_key, admin_key_path) =
            AdminKey::load_or_generate(config.admin.key.as_deref(), &data_dir)
                .map_err(StartError::AdminKey)?;
        let (registry, shared) = open_registry(&config, &data_dir)?;
        let usage = Arc::new(Usage::new(config.usage.revoked_idle_timeout));
        let pipeline = Pipeline::start(PipelineConfig::from_settings(
            data_dir.clone(),
            &config.pipeline,
        ))
        .await
        .map_err(|e| StartError::Pipeline(e.to_string()))?;
        let rw = &config.remote_write;
        let rw_limits = Limits {
            max_decoded_bytes: config.body.remote_write_max_decoded_bytes,
            max_label_names_per_series: rw.max_label_names_per_series,
            max_label_name_len: rw.max_label_name_length,
            max_label_value_len: rw.max_label_value_length,
            max_future_ms: i64::try_from(rw.max_future.as_millis()).unwrap_or(i64::MAX),
        };
        let webhook = match config.abuse.webhook_url.as_str() {
            "" => WebhookQueue::disabled(),
            url => WebhookQueue::new(WebhookSettings::new(
                url.parse()
                    .map_err(|e| StartError::WebhookUrl(format!("{url:?}: {e}")))?,
            )),
        };
        // Leaked-secret events go where the monitor's events go (counters, recent rings, the
        // webhook); the endpoint audits its revoke or flag itself. The state is built below.
        let edge: Arc<OnceLock<Weak<AppState>>> = Arc::default();
        let to_sink = Arc::clone(&edge);
        let secret_scanning = SecretScanning::from_config(
            &config.abuse,
            Arc::new(move |event: &crate::abuse::Event| {
                if let Some(state) = to_sink.get().and_then(Weak::upgrade) {
                    let token = state.registry.active(&event.token_id);
                    let watch = token.as_ref().and_then(|t| t.watch().get());
                    state.abuse.sink.record(watch, event);
                }
            }),
        )?;
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })
        };
        let ingest = bind(config.server.ingest_addr).await?;
        let ops = bind(config.server.ops_addr).await?;
        let ingest_addr = ingest.local_addr().map_err(|source| StartError::Bind {
            addr: config.server.ingest_addr,
            source,
        })?;
        let ops_addr = ops.local_addr().map_err(|source| StartError::Bind {
            addr: config.server.ops_addr,
            source,
        })?;
        let app_check = crate::appcheck::KeyStore::new(config.mobile.app_check_jwks_file.clone());
        let global_limits = match config.limits.redis_url.0.as_str() {
            "" => None,
            url => Some(
                GlobalLimits::new(
                    url,
                    config.limits.redis_ca_file.as_deref(),
                    &config.server.edge_name(),
                )
                .map_err(StartError::RedisUrl)?,
            ),
        };
        let state = Arc::new(AppState {
            cors: CorsPolicy::new(&config.rum),
            registry,
            usage,
            pipeline,
            admin_key,
            rw_limits,
            op_metrics: OpMetrics::new(),
            abuse: crate::abuse::Monitor::new(config.abuse.clone()),
            console: Default::default(),
            ready: AtomicBool::new(true),
            app_check,
            webhook,
            secret_scanning,
            global_limits,
            config,
        });
        let _ = edge.set(Arc::downgrade(&state));
        state.abuse.sink.set_hook(Arc::new(state.webhook.clone()));
        let (shutdown, watcher) = watch::channel(false);
        let mut servers = vec![
            tokio::spawn(server::run(
                ingest,
                Listener::Ingest,
                state.clone(),
                tls.clone(),
                watcher.clone(),
            )),
            tokio::spawn(server::run(
                ops,
                Listener::Ops,
                state.clone(),
                tls.clone(),
                watcher.clone(),
            )),
            tokio::spawn(state.webhook.clone().run(watcher.clone())),
            tokio::spawn(crate::abuse::Monitor::run(state.clone(), watcher.clone())),
            tokio::spawn(refresh_app_check_keys(state.clone(), watcher.clone())),
        ];
        if let Some(tls) = &tls {
            servers.push(tokio::spawn(tls.clone().watch(watcher.clone())));
        }
        if let Some(global) = &state.global_limits {
            servers.push(tokio::spawn(Arc::clone(global).run(watcher.clone())));
        }
        if let Some(pg) = shared {
            let poll = state.config.store.poll_interval;
            let dir = &state.config.data_dir.0;
            crate::token::follow::spawn(pg, Arc::downgrade(&state), poll, dir, watcher.clone())
                .map_err(StartError::Follow)?;
        }
        servers.push(tokio::spawn(housekeeping(state.clone(), watcher)));
        tracing::info!("listening ingest={ingest_addr} ops={ops_addr}");
        if let Some(path) = &admin_key_path {
            tracing::info!(path = %path.display(), "admin key file");
        }
        Ok(Edge {
            state,
            ingest_addr,
            ops_addr,
            admin_key_path,
            shutdown,
            servers,
            tls,
        })
    }

    pub fn ingest_addr(&self) -> SocketAddr {
        self.ingest_addr
    }

    pub fn ops_addr(&self) -> SocketAddr {
        self.ops_addr
    }

    pub fn admin_key(&self) -> &str {
        self.state.admin_key.expose()
    }

    pub fn admin_key_path(&self) -> Option<&PathBuf> {
        self.admin_key_path.as_ref()
    }

    /// Reads the TLS certificate files again now, as `SIGHUP` does; `None` without TLS,
    /// `Some(false)` when they did not load (the previous certificate stays).
    pub fn reload_tls(&self) -> Option<bool> {
        self.tls.as_ref().map(server::Tls::reload)
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (bounded by `shutdown_grace`), then
    /// flushes the pipeline.
    pub async fn shutdown(self) {
        self.state.ready.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        let grace = self.state.config.server.shutdown_grace;
        for s in self.servers {
            if tokio::time::timeout(grace + Duration::from_secs(1), s)
                .await
                .is_err()
            {
                tracing::warn!("a listener did not stop within the shutdown grace period");
            }
        }
        self.state.pipeline.shutdown().await;
    }
}

/// The token registry on the configured store. A shared store (then also returned, for its
/// follower, started once the state exists) that is unreachable at start leaves the edge
/// serving its local snapshot, or, without one, nothing yet (`/readyz` 503) until it answers.
fn open_registry(
    config: &Config,
    data_dir: &std::path::Path,
) -> Result<(Registry, Option<Arc<PgStore>>), StartError> {
    let limits = config.limits.clone();
    let url = config.store.url.as_str();
    if url.is_empty() {
        let store = Arc::new(FileStore::open(data_dir)?);
        return Ok((Registry::open(store, limits)?, None));
    }
    let pg = Arc::new(PgStore::new(url, &config.server.edge_name())?);
    let redacted = crate::token::store::pg::redacted(url);
    tracing::info!(url = %redacted, "token store: PostgreSQL");
    let registry = match Registry::open(pg.clone(), limits.clone()) {
        Ok(registry) => registry,
        Err(StoreError::Unavailable(e)) => {
            let dir = crate::token::follow::snapshot_dir(data_dir);
            let found = dir.join("tokens.json").exists();
            let snapshot = FileStore::open(&dir)?;
            let registry = Registry::open_from(pg.clone(), &snapshot, limits)?;
            if found {
                tracing::warn!(error = %e, url = %redacted, "token store unreachable at start; serving the local snapshot");
            } else {
                tracing::error!(error = %e, url = %redacted, "token store unreachable at start and no snapshot; not ready until it answers");
                registry.set_unloaded();
            }
            registry
        }
        Err(e) => return Err(e.into()),
    };
    Ok((registry, Some(pg)))
}

/// Periodic upkeep, so that state fed by requests stays bounded: forget idle per-client
/// limiter state, and fold the metrics recorder's buffered samples (which otherwise grow
/// until somebody scrapes `/metrics`).
async fn housekeeping(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut limiters = tokio::time::interval(Duration::from_secs(30));
    let mut metrics = tokio::time::interval(UPKEEP_INTERVAL);
    // A late tick is one fold of everything buffered, not a burst of catch-up calls.
    metrics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = limiters.tick() => state.registry.for_each_active(|t| t.limiter.housekeeping()),
            _ = metrics.tick() => state.op_metrics.run_upkeep(),
            _ = shutdown.changed() => return,
        }
    }
}

/// Re-reads the App Check JWKS file when it changed (a `stat` every two seconds; the file is
/// read only when its modification time or length moved), off the request path.
async fn refresh_app_check_keys(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(crate::appcheck::jwks::REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let state = state.clone();
                let _ = tokio::task::spawn_blocking(move || state.app_check.refresh()).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
