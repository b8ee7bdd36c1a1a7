//! TLS for the tests: a CA of the test's own, the server certificates it issues, and a
//! TLS-terminating TCP proxy that puts one in front of a plain server (the BCHN stub, a real
//! LNbits), so Cashier's calls out go over real TLS sockets. The proxy forwards bytes, so it
//! carries HTTP and websockets alike; it tells the test what crossed it (each connection's
//! first request and answer lines, what a websocket's server pushed, each refused
//! handshake), which is what tests wait on.
//!
//! One copy, included by path from `tests/bchn.rs` and `tests/api/main.rs`.

// Each test binary uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// A certificate authority made for one test. Its certificate is in a PEM file, what
/// `--extra-ca-file` takes.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ca {
    /// A CA with a name of its own.
    pub fn new() -> Ca {
        Ca::named(&format!("Cashier tests CA {:016x}", rand::random::<u64>()))
    }

    /// A CA called `name`: two of the same name are what an impostor copying a CA's name
    /// makes.
    pub fn named(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
            .expect("the CA's certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem_file = dir.path().join("ca.pem");
        std::fs::write(&pem_file, issuer.pem()).expect("write the CA's PEM");
        Ca {
            issuer,
            pem_file,
            _dir: dir,
        }
    }

    /// The CA's certificate, PEM: for `--extra-ca-file`.
    pub fn pem_file(&self) -> &Path {
        &self.pem_file
    }

    /// A server certificate for `names` (IP addresses or DNS names), signed by this CA.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, "Cashier tests server");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("the leaf's certificate");
        Leaf {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }
}

/// A server's certificate and its key.
pub struct Leaf {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// What crossed the proxy, in the order each connection saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Crossed {
    /// A client's first line on a connection (e.g. `POST / HTTP/1.1`).
    Request(String),
    /// The upstream's first line on a connection (e.g. `HTTP/1.1 101 Switching Protocols`).
    Answer(String),
    /// What the upstream sent after switching protocols (`101`), as text: a websocket's
    /// frames from the server, unmasked, so their JSON shows.
    Pushed(String),
    /// A TLS handshake that failed, with the server side's reason (the client's alert).
    Refused(String),
}

/// A TLS-terminating proxy on 127.0.0.1: each connection's handshake with the leaf, then a
/// plain TCP connection to the upstream and the bytes copied both ways until either side
/// closes. Nothing reaches the upstream before a handshake succeeds. It runs until the
/// test's runtime stops.
pub struct TlsProxy {
    pub port: u16,
    crossed: mpsc::UnboundedReceiver<Crossed>,
}

impl TlsProxy {
    pub async fn start(leaf: &Leaf, upstream: SocketAddr) -> TlsProxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.cert.clone()],
                PrivateKeyDer::Pkcs8(leaf.key.clone_key()),
            )
            .expect("the server's certificate and key");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tell, crossed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (acceptor, tell) = (acceptor.clone(), tell.clone());
                tokio::spawn(async move {
                    let tls = match acceptor.accept(client).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            let _ = tell.send(Crossed::Refused(e.to_string()));
                            return;
                        }
                    };
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (from_client, to_client) = tokio::io::split(tls);
                    let (from_server, to_server) = server.into_split();
                    let up = pipe(from_client, to_server, tell.clone(), Crossed::Request);
                    let down = pipe(from_server, to_client, tell, Crossed::Answer);
                    tokio::join!(up, down);
                });
            }
        });
        TlsProxy { port, crossed }
    }

    /// `https://127.0.0.1:<port>`, with `user_info@` when given.
    pub fn url(&self, user_info: Option<&str>) -> String {
        match user_info {
            Some(u) => format!("https://{u}@127.0.0.1:{}", self.port),
            None => format!("https://127.0.0.1:{}", self.port),
        }
    }

    /// Waits for the next thing that crosses the proxy.
    pub async fn next(&mut self) -> Crossed {
        self.crossed.recv().await.expect("the proxy stopped")
    }

    /// Waits until something crossing the proxy matches `wanted` (a minute at most: the test
    /// fails, never hangs); returns it.
    pub async fn until(&mut self, wanted: impl Fn(&Crossed) -> bool) -> Crossed {
        let wait = async {
            loop {
                let next = self.next().await;
                if wanted(&next) {
                    return next;
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .expect("what the test waits for crossed the proxy within a minute")
    }

    /// Everything that crossed so far, without waiting.
    pub fn drain(&mut self) -> Vec<Crossed> {
        let mut out = Vec::new();
        while let Ok(c) = self.crossed.try_recv() {
            out.push(c);
        }
        out
    }
}

/// Copies one direction, telling its first line, and after an upstream's `101` everything it
/// pushes; at the end, closes the writing side so the other end sees the close too.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    tell: mpsc::UnboundedSender<Crossed>,
    kind: fn(String) -> Crossed,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut first = true;
    let mut switched = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if first {
            first = false;
            let line = buf[..n].split(|b| *b == b'\n').next().unwrap_or_default();
            let line = String::from_utf8_lossy(line).trim_end().to_owned();
            let crossed = kind(line);
            switched = matches!(&crossed, Crossed::Answer(l) if l.starts_with("HTTP/1.1 101"));
            let _ = tell.send(crossed);
        } else if switched {
            let _ = tell.send(Crossed::Pushed(
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
