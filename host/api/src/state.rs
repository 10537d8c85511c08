//! What every handler shares: the store and the API's settings.

use std::sync::Arc;
use std::time::Duration;

use sluice_store::{SecretKey, Store};
use tokio::sync::OnceCell;

use crate::access::Role;
use crate::routes::plugins::PluginView;

/// Lists the plugins this server has, loading each (blocking: it may
/// compile). Given by whoever starts the API, which knows the plugin
/// directories and the runtime.
pub type PluginLister = Arc<dyn Fn() -> Vec<PluginView> + Send + Sync>;

/// How the API behaves; every field comes from a flag or an environment
/// variable of `sluice server`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Let callers without credentials in with this role (off by default:
    /// nothing is anonymous unless the operator says so).
    pub anonymous: Option<Role>,
    /// How long a browser stays signed in.
    pub session_ttl: Duration,
    /// Mark cookies `Secure`. `None`: when the request came over TLS, as a
    /// load balancer's `X-Forwarded-Proto: https` says.
    pub secure_cookies: Option<bool>,
    /// Serve `/metrics` without credentials (for a scraper inside the VPC).
    pub metrics_public: bool,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            anonymous: None,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: None,
            metrics_public: false,
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

struct Inner {
    store: Store,
    config: ApiConfig,
    secret_key: Option<SecretKey>,
    plugin_lister: Option<PluginLister>,
    plugins: OnceCell<Vec<PluginView>>,
}

impl ApiState {
    /// The API over `store`; `secret_key` (SLUICE_SECRET_KEY) encrypts the
    /// secrets set through it.
    pub fn new(store: Store, config: ApiConfig, secret_key: Option<SecretKey>) -> ApiState {
        ApiState(Arc::new(Inner {
            store,
            config,
            secret_key,
            plugin_lister: None,
            plugins: OnceCell::new(),
        }))
    }

    /// The same API, listing plugins with `lister` (else it lists none).
    pub fn with_plugins(self, lister: PluginLister) -> ApiState {
        let inner = Arc::try_unwrap(self.0).unwrap_or_else(|shared| Inner {
            store: shared.store.clone(),
            config: shared.config.clone(),
            secret_key: shared.secret_key.clone(),
            plugin_lister: None,
            plugins: OnceCell::new(),
        });
        ApiState(Arc::new(Inner {
            plugin_lister: Some(lister),
            ..inner
        }))
    }

    /// Start listing the installed plugins in the background, so the first
    /// `GET /api/plugins` does not wait for every component to compile.
    pub fn warm_plugins(&self) {
        let state = self.clone();
        tokio::spawn(async move {
            let listed = state.plugins().await.len();
            tracing::debug!(plugins = listed, "installed plugins listed");
        });
    }

    /// The installed plugins, listed once (they come with the image).
    pub async fn plugins(&self) -> &[PluginView] {
        self.0
            .plugins
            .get_or_init(|| async {
                let Some(lister) = self.0.plugin_lister.clone() else {
                    return Vec::new();
                };
                tokio::task::spawn_blocking(move || lister())
                    .await
                    .unwrap_or_default()
            })
            .await
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The settings.
    pub fn config(&self) -> &ApiConfig {
        &self.0.config
    }

    /// The key secrets are encrypted with, if the server has one.
    pub fn secret_key(&self) -> Option<&SecretKey> {
        self.0.secret_key.as_ref()
    }
}
