//! Mutual TLS between agents: an alternative to the cookie for clusters that run a PKI
//! (Lashup ran Erlang distribution over TLS).
//!
//! With `--tls-cert/--tls-key/--tls-ca`, every peer connection is TLS 1.3 (rustls, the
//! ring provider) and both ends must present a certificate that chains to the CA and is
//! valid now. A node's certificate names it: its one DNS subject alternative name is the
//! node's `--name`, from which its id derives; the link handshake inside then refuses a
//! hello that claims another id. A peer whose certificate is missing, from another CA,
//! expired, or for another name is refused and counted exactly as a wrong cookie is
//! (`hawser_auth_failures_total`).
//!
//! The link handshake and record layer still run inside TLS (core is the same code with
//! or without it); with no cookie configured, its password is derived from the CA
//! certificate ([`Tls::cookie`]), so the certificates alone decide who may link.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hawser_core::NodeId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// Why the TLS settings cannot be used.
#[derive(Debug)]
pub enum TlsError {
    /// A file could not be read.
    Read { path: PathBuf, error: io::Error },
    /// A file holds no usable PEM item of the kind needed.
    Pem { path: PathBuf, what: &'static str },
    /// rustls refused the certificates or key.
    Config(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            TlsError::Pem { path, what } => write!(f, "{}: no PEM {what} in it", path.display()),
            TlsError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Why a peer's TLS handshake failed or its certificate names no node.
#[derive(Debug)]
pub enum TlsRefusal {
    /// The handshake failed: no certificate, another CA, expired, or not TLS at all.
    Handshake(io::Error),
    /// The certificate has no single DNS name to take as the node's name.
    NoName,
    /// The handshake took longer than the link handshake may.
    Timeout,
}

impl std::fmt::Display for TlsRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsRefusal::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsRefusal::NoName => f.write_str("the certificate names no node (one DNS name)"),
            TlsRefusal::Timeout => f.write_str("TLS handshake timed out"),
        }
    }
}

/// This agent's TLS identity and trust, ready to accept and dial.
pub struct Tls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    ca_der: Vec<u8>,
    /// The node name our own certificate gives, if it gives one.
    name: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        path: path.to_owned(),
        error,
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

impl Tls {
    /// Load this node's certificate chain and key, and the CA its peers' certificates
    /// must chain to.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> Result<Tls, TlsError> {
        let chain = certs(cert)?;
        let name = cert_name(&chain[0]);
        let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Pem {
            path: key.to_owned(),
            what: "private key",
        })?;
        let ca_certs = certs(ca)?;
        let mut roots = RootCertStore::empty();
        for c in &ca_certs {
            roots.add(c.clone()).map_err(TlsError::Config)?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(ring::default_provider());
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Config)?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(TlsError::Config)?;
        let server_verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(TlsError::Config)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NamedByItsCertificate(server_verifier)))
            .with_client_auth_cert(chain, key)
            .map_err(TlsError::Config)?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            ca_der: ca_certs[0].to_vec(),
            name,
        })
    }

    /// The node name this agent's own certificate gives (its one DNS name).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The link handshake's password when no cookie is set: derived from the CA, known
    /// to every node that trusts it. TLS is then what authenticates.
    pub fn cookie(&self) -> Vec<u8> {
        Sha256::new()
            .chain_update(b"hawser/link cookie from the TLS CA")
            .chain_update(&self.ca_der)
            .finalize()
            .to_vec()
    }

    /// Accept a peer's TLS handshake: the stream and the id its certificate names.
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<(TlsStream<S>, NodeId), TlsRefusal> {
        let tls = self
            .acceptor
            .accept(stream)
            .await
            .map_err(TlsRefusal::Handshake)?;
        let id = peer_id(tls.get_ref().1.peer_certificates())?;
        Ok((TlsStream::Server(tls), id))
    }

    /// Run a TLS handshake on a dialled stream: the stream and the id the peer's
    /// certificate names.
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<(TlsStream<S>, NodeId), TlsRefusal> {
        // We dial addresses, not names: the verifier takes the name from the certificate.
        let name = ServerName::try_from("hawser-peer").expect("a valid DNS name");
        let tls = self
            .connector
            .connect(name, stream)
            .await
            .map_err(TlsRefusal::Handshake)?;
        let id = peer_id(tls.get_ref().1.peer_certificates())?;
        Ok((TlsStream::Client(tls), id))
    }
}

/// The node a certificate names: its one DNS subject alternative name.
fn cert_name(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    let mut names = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::DNSName(name) => Some(name.to_string()),
        _ => None,
    });
    let name = names.next()?;
    names.next().is_none().then_some(name)
}

fn peer_id(certs: Option<&[CertificateDer<'_>]>) -> Result<NodeId, TlsRefusal> {
    let name = certs
        .and_then(|c| c.first())
        .and_then(cert_name)
        .ok_or(TlsRefusal::NoName)?;
    Ok(NodeId::from_name(&name))
}

/// Verifies a peer's server certificate as WebPKI does — chain to the CA, validity now,
/// valid for a name — with the name the certificate itself gives: we dial addresses,
/// and the node id that name derives from is checked against the peer's hello instead.
#[derive(Debug)]
struct NamedByItsCertificate(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NamedByItsCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = cert_name(end_entity)
            .and_then(|n| ServerName::try_from(n).ok())
            .ok_or(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))?;
        self.0
            .verify_server_cert(end_entity, intermediates, &name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A peer connection: plain TCP, or TLS over it.
pub enum PeerStream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for PeerStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for PeerStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            PeerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
