//! HTTPS: the certificate (PEM files, or a self-signed one made at start), its reload on SIGHUP,
//! and the handshake with the profile's `tls` knob (a handshake delay, a refused fraction).
//!
//! The handshake runs on the accepted [`FaultIo`](super::fault::FaultIo), so the transport
//! faults stay at the socket, beneath TLS: `reset` is a TCP RST; `close` is a bare FIN with no
//! `close_notify` (the client sees the connection cut, as when a PG process dies); `garbage`
//! is raw bytes on the socket, outside the TLS records (the client's TLS layer reports a
//! corrupt record, as with a broken middlebox).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use rand::{Rng, RngExt};
use rustls::ServerConfig;
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::{TlsIdentity, TlsSettings};
use crate::profile::TlsKnob;

/// A client that has not finished its handshake by then (after any delay the profile asks
/// for) is closed: it holds a connection slot for nothing.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ALPN in the server's order of preference, as the real PG offers.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The TLS side of a server: the certificate in force and the handshake's metrics.
pub struct Tls {
    config: ArcSwap<ServerConfig>,
    /// Answers every ClientHello with a fatal `access_denied` alert: a refused handshake.
    refuse: Arc<ServerConfig>,
    identity: TlsIdentity,
    metrics: TlsMetrics,
}

/// How a handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeResult {
    Ok = 0,
    /// Refused on purpose (the profile's `handshake_refuse`).
    Refused = 1,
    /// The client's hello or the handshake was bad, or the client went away.
    Failed = 2,
    /// Not finished within the handshake timeout.
    Timeout = 3,
}

const RESULTS: [&str; 4] = ["ok", "refused", "failed", "timeout"];
const VERSIONS: [&str; 3] = ["tls1_2", "tls1_3", "other"];
const PROTOCOLS: [&str; 3] = ["h2", "http1_1", "none"];

/// The handshake metrics; every label from the closed sets above, handles resolved at start.
struct TlsMetrics {
    handshakes: [IntCounter; RESULTS.len()],
    duration: Histogram,
    /// `[version][alpn]`.
    negotiated: [[IntCounter; PROTOCOLS.len()]; VERSIONS.len()],
}

impl TlsMetrics {
    fn new(registry: &Registry) -> TlsMetrics {
        let handshakes = IntCounterVec::new(
            Opts::new(
                "gazua_tls_handshakes_total",
                "TLS handshakes by result: ok, refused (the profile's handshake_refuse), failed, timeout.",
            ),
            &["result"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "gazua_tls_handshake_duration_seconds",
                "From accept to a completed TLS handshake, the profile's handshake_latency included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
        )
        .expect("valid metric");
        let negotiated = IntCounterVec::new(
            Opts::new(
                "gazua_tls_connections_total",
                "TLS connections by protocol version and ALPN protocol.",
            ),
            &["version", "alpn"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(handshakes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(negotiated.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        TlsMetrics {
            handshakes: RESULTS.map(|r| handshakes.with_label_values(&[r])),
            duration,
            negotiated: VERSIONS.map(|v| PROTOCOLS.map(|p| negotiated.with_label_values(&[v, p]))),
        }
    }
}

impl Tls {
    /// Loads (or makes) the certificate; a pair that cannot serve is refused here, at start.
    pub fn load(settings: &TlsSettings, registry: &Registry) -> Result<Tls, TlsError> {
        let key = match &settings.identity {
            TlsIdentity::Files { cert, key } => load_pair(cert, key)?,
            TlsIdentity::SelfSigned { names, write_ca } => {
                let (key, ca_pem) = self_signed(names)?;
                if let Some(path) = write_ca {
                    fs::write(path, ca_pem).map_err(|e| {
                        TlsError(format!(
                            "--tls-write-ca {}: cannot write: {e}",
                            path.display()
                        ))
                    })?;
                }
                key
            }
        };
        let refuse = builder()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Refuse));
        Ok(Tls {
            config: ArcSwap::from_pointee(server_config(key)),
            refuse: Arc::new(refuse),
            identity: settings.identity.clone(),
            metrics: TlsMetrics::new(registry),
        })
    }

    /// Re-reads `--tls-cert`/`--tls-key`; a pair that does not load is refused and the one in
    /// force keeps serving. New connections get the new certificate; open ones keep theirs.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let TlsIdentity::Files { cert, key } = &self.identity {
            let key = load_pair(cert, key)?;
            self.config.store(Arc::new(server_config(key)));
            tracing::info!(cert = %cert.display(), "tls certificate reloaded");
        }
        Ok(())
    }

    /// Runs the server side of a handshake: reads the ClientHello, waits the profile's
    /// handshake delay, then completes it (or refuses it with an `access_denied` alert). `None`
    /// when the connection is not to be served; the reason is counted.
    pub async fn handshake<IO>(
        &self,
        io: IO,
        knob: Option<&TlsKnob>,
        max_delay: Duration,
    ) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = Instant::now();
        let (delay, refuse) = knob.map_or((Duration::ZERO, false), |knob| {
            decide(knob, &mut rand::rng(), max_delay)
        });
        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT + delay, async {
            let hello = LazyConfigAcceptor::new(Acceptor::default(), io).await?;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let config = if refuse {
                self.refuse.clone()
            } else {
                self.config.load_full()
            };
            hello.into_stream(config).await
        })
        .await;
        let outcome = match result {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(_)) if refuse => Err(HandshakeResult::Refused),
            Ok(Err(error)) => {
                tracing::debug!(%error, "tls handshake failed");
                Err(HandshakeResult::Failed)
            }
            Err(_) => Err(HandshakeResult::Timeout),
        };
        match outcome {
            Ok(stream) => {
                self.metrics.handshakes[HandshakeResult::Ok as usize].inc();
                self.metrics.duration.observe(start.elapsed().as_secs_f64());
                let (_, conn) = stream.get_ref();
                let version = match conn.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_2) => 0,
                    Some(rustls::ProtocolVersion::TLSv1_3) => 1,
                    _ => 2,
                };
                let alpn = match conn.alpn_protocol() {
                    Some(b"h2") => 0,
                    Some(b"http/1.1") => 1,
                    _ => 2,
                };
                self.metrics.negotiated[version][alpn].inc();
                Some(stream)
            }
            Err(result) => {
                self.metrics.handshakes[result as usize].inc();
                None
            }
        }
    }
}

/// The profile's knob for one handshake: its delay (clamped to `--max-latency`) and whether
/// it is refused.
fn decide<R: Rng + ?Sized>(knob: &TlsKnob, rng: &mut R, max_delay: Duration) -> (Duration, bool) {
    let delay = knob
        .handshake_latency
        .as_ref()
        .map_or(Duration::ZERO, |latency| latency.sample(rng).min(max_delay));
    let refuse = knob.handshake_refuse > 0.0 && rng.random::<f64>() * 100.0 < knob.handshake_refuse;
    (delay, refuse)
}

/// Reloads the certificate on every SIGHUP, beside the profiles' reload (each listens for the
/// signal on its own; a bad pair leaves the profiles' reload untouched and vice versa).
pub async fn reload_on_sighup(tls: Arc<Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the tls certificate is not reloaded");
        return;
    };
    while hangups.recv().await.is_some() {
        if let Err(error) = tls.reload() {
            tracing::error!(%error, "tls certificate reload refused; the certificate in force keeps serving");
        }
    }
}

/// A certificate pair that cannot serve, or a self-signed one that could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for io::Error {
    fn from(error: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, error)
    }
}

fn server_config(key: CertifiedKey) -> ServerConfig {
    let mut config = builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Single(Arc::new(key))));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    config
}

/// rustls with the ring provider named, not taken from crate features: ring builds with a C
/// compiler alone (no cmake, no nasm), so the static container build needs nothing more.
fn builder() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
}

/// The one certificate of a `ServerConfig`: rustls' own single-cert resolver, kept here so a
/// reload can build it from an already checked [`CertifiedKey`].
#[derive(Debug)]
struct Single(Arc<CertifiedKey>);

impl ResolvesServerCert for Single {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// No certificate for anyone: rustls answers with a fatal `access_denied` alert.
#[derive(Debug)]
struct Refuse;

impl ResolvesServerCert for Refuse {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}

/// Reads a PEM certificate chain and its private key, and checks that they can serve: the key
/// is the certificate's, and the certificate is valid now.
fn load_pair(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |flag: &str, path: &Path| {
        fs::read(path).map_err(|e| TlsError(format!("{flag} {}: cannot read: {e}", path.display())))
    };
    let cert_pem = read("--tls-cert", cert_path)?;
    let key_pem = read("--tls-key", key_path)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError(format!(
                "--tls-cert {}: expected PEM certificates (-----BEGIN CERTIFICATE-----): {e}",
                cert_path.display()
            ))
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError(format!(
            "--tls-cert {}: no certificate in it; expected a PEM '-----BEGIN CERTIFICATE-----' block",
            cert_path.display()
        )));
    };
    check_validity(leaf, cert_path, SystemTime::now())?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        TlsError(format!(
            "--tls-key {}: expected a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
            key_path.display()
        ))
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| {
        TlsError(format!(
            "--tls-key {}: unsupported private key ({e}); expected RSA, ECDSA P-256/P-384 or Ed25519",
            key_path.display()
        ))
    })?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().map_err(|_| {
        TlsError(format!(
            "--tls-key {} is not the private key of --tls-cert {}: give the key the certificate was issued for",
            key_path.display(),
            cert_path.display()
        ))
    })?;
    Ok(certified)
}

/// Refuses a certificate outside its validity period: every client would refuse it anyway, one
/// handshake at a time, and the load test would measure nothing but errors.
fn check_validity(leaf: &CertificateDer<'_>, path: &Path, now: SystemTime) -> Result<(), TlsError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(leaf).map_err(|e| {
        TlsError(format!(
            "--tls-cert {}: the first certificate does not parse as X.509: {e}",
            path.display()
        ))
    })?;
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let validity = cert.validity();
    if now > validity.not_after.timestamp() {
        return Err(TlsError(format!(
            "--tls-cert {}: the certificate expired on {}; give a current certificate",
            path.display(),
            validity.not_after
        )));
    }
    if now < validity.not_before.timestamp() {
        return Err(TlsError(format!(
            "--tls-cert {}: the certificate is not valid before {}; give a current certificate",
            path.display(),
            validity.not_before
        )));
    }
    Ok(())
}

/// Makes a CA and a leaf certificate for `names` signed by it. Returns the leaf with its key
/// and the CA's PEM (what a client trusts). The CA's key is dropped: nothing else is ever
/// signed with it.
fn self_signed(names: &[String]) -> Result<(CertifiedKey, String), TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| TlsError(format!("cannot make the self-signed certificate: {e}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Gazua PAY self-signed CA");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::new(names.to_vec()).map_err(|e| {
        TlsError(format!(
            "--tls-name {}: expected DNS names or IP addresses: {e}",
            names.join(",")
        ))
    })?;
    leaf_params.distinguished_name.push(
        DnType::CommonName,
        names.first().map_or("gazua", String::as_str),
    );
    let leaf_key = KeyPair::generate().map_err(fail)?;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(fail)?;

    let key = PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| TlsError(format!("cannot use the self-signed key: {e}")))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError(format!("cannot use the self-signed key: {e}")))?;
    let chain = vec![leaf.der().clone(), ca.der().clone()];
    Ok((CertifiedKey::new(chain, signing), ca.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::Latency;
    use rand::SeedableRng;

    #[test]
    fn the_knob_refuses_about_the_fraction_asked_and_clamps_the_delay() {
        let knob = TlsKnob {
            handshake_latency: Some(Latency::parse("5s").unwrap()),
            handshake_refuse: 25.0,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 20_000;
        let mut refused = 0;
        for _ in 0..n {
            let (delay, refuse) = decide(&knob, &mut rng, Duration::from_secs(1));
            assert_eq!(delay, Duration::from_secs(1));
            refused += usize::from(refuse);
        }
        // 25% of 20,000: the binomial's sd is ~61, so ±400 never flakes.
        assert!((4_600..5_400).contains(&refused), "{refused} refused");
    }

    #[test]
    fn a_self_signed_certificate_covers_its_names_and_its_key() {
        let (key, ca) = self_signed(&TlsIdentity::default_names(
            "10.1.2.3:8443".parse().unwrap(),
        ))
        .unwrap();
        assert!(key.keys_match().is_ok());
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
        let (_, leaf) = X509Certificate::from_der(key.cert[0].as_ref()).unwrap();
        let san = leaf.subject_alternative_name().unwrap().unwrap();
        let names = &san.value.general_names;
        assert!(
            names.contains(&GeneralName::DNSName("localhost")),
            "{names:?}"
        );
        for ip in [&[127, 0, 0, 1][..], &[10, 1, 2, 3][..]] {
            assert!(names.contains(&GeneralName::IPAddress(ip)), "{names:?}");
        }
    }
}
