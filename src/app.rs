//! Builds the server from [`Settings`]: opens the store, binds the listener, wires the routes.
//! Tests build it on port 0 and talk to it over real sockets.

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpServer};

use crate::config::Settings;
use crate::http::{routes, AppState};
use crate::jpp::Invoices;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    server: Server,
    port: u16,
    public_url: String,
    store: Store,
}

impl Application {
    /// Opens the database (running migrations) and binds the listener; the server runs once
    /// [`Application::run_until_stopped`] is awaited.
    pub async fn build(settings: &Settings) -> Result<Application, StartError> {
        let target = settings.database.target()?;
        let options = settings.database.store_options();
        let store = tokio::task::spawn_blocking(move || Store::open(&target, &options))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;

        let listener = TcpListener::bind(settings.listen).map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
        let local = listener.local_addr().map_err(|source| StartError::Bind {
            addr: settings.listen,
            source,
        })?;
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));

        let state = web::Data::new(AppState {
            store: store.clone(),
            invoices: Invoices::new(
                store.clone(),
                settings.network,
                public_url.clone(),
                settings.default_expires_in,
            ),
            public_invoices: settings.public_invoices,
            keys: Default::default(),
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(NormalizePath::new(TrailingSlash::Trim))
                .configure(routes)
        })
        // Signals are ours (see main): stop accepting, finish requests in flight, then exit.
        .disable_signals()
        .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            server = server.workers(workers.max(1));
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartError::Bind {
                addr: settings.listen,
                source,
            })?
            .run();
        Ok(Application {
            server,
            port: local.port(),
            public_url,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A handle that stops the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
