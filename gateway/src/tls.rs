//! TLS on the API port (`[http] https-enabled`): HTTP/1.1 and HTTP/2 (so Flight SQL's gRPC
//! too) behind one rustls acceptor, negotiated by ALPN.
//!
//! ```text
//!   TcpListener ─accept─▶ handshake task (bounded by HANDSHAKE_TIMEOUT) ─▶ channel ─▶ axum::serve
//!                              │ failed (wrong certificate, clear text, timeout)
//!                              ▼ logged at debug, the connection closed; others unaffected
//! ```
//!
//! Handshakes run on tasks of their own, so a client that opens a connection and says nothing
//! delays no one else. The certificate and key are read once, at start; a file that cannot be
//! read or holds no usable key stops `fletchd` with the key's name.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key} {path:?}: {source}")]
    Read {
        key: String,
        path: String,
        source: io::Error,
    },
    #[error("{key} {path:?}: {message}")]
    Pem {
        key: String,
        path: String,
        message: String,
    },
    #[error(
        "[{section}] https-certificate and https-private-key do not make a usable identity: {source}"
    )]
    Identity {
        section: &'static str,
        source: rustls::Error,
    },
}

/// A PEM file of trusted certificates (`[section] key`), checked to hold at least one.
pub fn ca_pem(section: &'static str, key: &str, path: &str) -> Result<Vec<u8>, TlsError> {
    let name = format!("[{section}] {key}");
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        key: name.clone(),
        path: path.to_string(),
        source,
    })?;
    let found = CertificateDer::pem_slice_iter(&pem)
        .filter(Result::is_ok)
        .count();
    if found == 0 {
        return Err(TlsError::Pem {
            key: name,
            path: path.to_string(),
            message: "no certificate (PEM \"BEGIN CERTIFICATE\") in the file".into(),
        });
    }
    Ok(pem)
}

/// A server identity read once from `[section]`'s files: the rustls configuration presenting
/// it, and its PEM text (for tonic's own TLS server on the internal port).
pub struct Identity {
    pub config: Arc<ServerConfig>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// The rustls configuration of a server presenting the certificate chain in `cert` with the
/// private key in `key` (empty: the key is in `cert`'s file too, as 1.x reads it); `section`
/// names the keys in errors.
pub fn server_config(
    section: &'static str,
    cert: &str,
    key: &str,
) -> Result<Arc<ServerConfig>, TlsError> {
    identity(section, cert, key).map(|i| i.config)
}

/// [`server_config`] with the PEM text it was built from.
pub fn identity(section: &'static str, cert: &str, key: &str) -> Result<Identity, TlsError> {
    let cert_key = format!("[{section}] https-certificate");
    let pem = |k: &str, path: &str, e: rustls::pki_types::pem::Error| TlsError::Pem {
        key: k.to_string(),
        path: path.to_string(),
        message: e.to_string(),
    };
    let read = |k: &str, path: &str| {
        std::fs::read(Path::new(path)).map_err(|source| TlsError::Read {
            key: k.to_string(),
            path: path.to_string(),
            source,
        })
    };
    let cert_pem = read(&cert_key, cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&cert_key, cert, e))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            key: cert_key,
            path: cert.to_string(),
            message: "no certificate (PEM \"BEGIN CERTIFICATE\") in the file".into(),
        });
    }
    let (key_name, key_path) = match key {
        "" => (cert_key.clone(), cert),
        k => (format!("[{section}] https-private-key"), k),
    };
    let key_pem = read(&key_name, key_path)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Pem {
            key: key_name.clone(),
            path: key_path.to_string(),
            message: "no private key (PEM \"BEGIN PRIVATE KEY\", RSA or EC) in the file".into(),
        },
        e => pem(&key_name, key_path, e),
    })?;
    // ring, as reqwest uses it (one crypto library in the tree); rustls 0.23.48 deprecates its
    // provider only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Identity { section, source })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|source| TlsError::Identity { section, source })?;
    // gRPC (Flight SQL) needs HTTP/2; browsers and 1.x clients speak HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        cert_pem,
        key_pem,
    })
}

/// A listener whose connections are TLS sessions; for `axum::serve`.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and handshakes with `config`, each connection on a task of its own,
    /// until the listener is dropped.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: wait, as axum's own does.
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set");
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { accepted, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(c) => c,
            // The accept task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
