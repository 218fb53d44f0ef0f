//! HTTPS through real sockets: a rustls client trusting the written CA (HTTP/1.1 and h2 by
//! ALPN), Debian's curl with `--cacert`, the certificate checks at start, the reload on SIGHUP
//! through the real binary, the profile's handshake knob, the faults over TLS and the metrics.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Binary, fresh_confirm_body, raw_confirm};
use gazua_pay::config::{Config, TlsIdentity, TlsSettings};
use gazua_pay::server::Server;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// An in-process server with `--tls-self-signed --tls-write-ca` (and plain HTTP beside it).
struct TlsServer {
    plain: SocketAddr,
    tls: SocketAddr,
    ca: Vec<u8>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

async fn start(profile_json: Option<&str>) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let mut config = common::config();
    if let Some(json) = profile_json {
        let path = dir.path().join("tls-profile.json");
        std::fs::write(&path, json).unwrap();
        config.profile = Some(path.to_str().unwrap().to_owned());
    }
    config.tls = Some(TlsSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: TlsIdentity::SelfSigned {
            names: TlsIdentity::default_names("127.0.0.1:0".parse().unwrap()),
            write_ca: Some(ca_path.clone()),
        },
    });
    let server = Server::bind(config).await.expect("bind");
    let plain = server.local_addr().unwrap();
    let tls = server.tls_addr().expect("a tls listener");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    TlsServer {
        plain,
        tls,
        ca: std::fs::read(&ca_path).expect("the CA was written at start"),
        _dir: dir,
        _stop: stop,
    }
}

fn client_config(ca_pem: &[u8], alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &[u8],
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(client_config(ca_pem, alpn))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn confirm_request() -> Request<Full<Bytes>> {
    Request::builder()
        .method("POST")
        .uri("https://localhost/v1/payments/confirm")
        .header("content-type", "application/json")
        .header("authorization", "Basic dGVzdF9za194Og==")
        .body(Full::new(Bytes::from(fresh_confirm_body())))
        .unwrap()
}

/// A confirm over HTTP/1.1 on a TLS connection: status, `status` of the payment, decision.
async fn confirm_h1(stream: TlsStream<TcpStream>) -> (http::StatusCode, serde_json::Value, String) {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(confirm_request()).await.unwrap();
    read(response).await
}

async fn read(
    response: http::Response<hyper::body::Incoming>,
) -> (http::StatusCode, serde_json::Value, String) {
    let status = response.status();
    let decision = response
        .headers()
        .get("x-gazua-decision")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap(), decision)
}

#[tokio::test]
async fn a_rustls_client_trusting_the_written_ca_gets_a_confirm_over_https() {
    let server = start(None).await;
    let stream = tls_connect(server.tls, &server.ca, &[b"http/1.1"])
        .await
        .expect("the handshake succeeds against the written CA");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, body, decision) = confirm_h1(stream).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "DONE");
    assert!(decision.contains("outcome=approved"), "{decision}");

    // Plain HTTP is served beside it.
    let plain = common::confirm(server.plain, &[]).await;
    assert_eq!(plain.status, 200);
}

#[tokio::test]
async fn a_client_that_trusts_another_ca_is_refused_the_handshake() {
    let server = start(None).await;
    let other = start(None).await;
    let error = tls_connect(server.tls, &other.ca, &[b"http/1.1"])
        .await
        .expect_err("a certificate from an untrusted CA");
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
}

#[tokio::test]
async fn h2_is_negotiated_by_alpn_and_serves_confirms_on_one_connection() {
    let server = start(None).await;
    let stream = tls_connect(server.tls, &server.ca, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let answers = (0..4).map(|_| {
        let mut sender = sender.clone();
        async move { read(sender.send_request(confirm_request()).await.unwrap()).await }
    });
    for (status, body, _) in futures_join(answers).await {
        assert_eq!(status, 200);
        assert_eq!(body["status"], "DONE");
    }
}

/// Runs the futures concurrently (four requests multiplexed on the one h2 connection).
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn curl_with_cacert_gets_a_confirm_over_https_and_h2() {
    let server = start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &server.ca).unwrap();
    for version in ["--http1.1", "--http2"] {
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&ca)
            .args([
                version,
                "-w",
                "\n%{http_code} %{http_version}",
                "-u",
                "test_sk_x:",
            ])
            .args(["-H", "content-type: application/json", "-d"])
            .arg(fresh_confirm_body())
            .arg(format!(
                "https://localhost:{}/v1/payments/confirm",
                server.tls.port()
            ))
            .output()
            .await
            .expect("curl is installed (.ci/run installs it)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {version}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (body, tail) = stdout.rsplit_once('\n').unwrap();
        let expected = if version == "--http2" {
            "200 2"
        } else {
            "200 1.1"
        };
        assert_eq!(tail, expected, "{stdout}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], "DONE");
    }
}

/// Writes `request` over a fresh TLS connection and reads until the connection ends.
async fn raw_tls(server: &TlsServer, request: &str) -> (Vec<u8>, std::io::Result<()>) {
    let mut stream = tls_connect(server.tls, &server.ca, &[b"http/1.1"])
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    common::read_until_closed(&mut stream).await
}

#[tokio::test]
async fn reset_over_tls_is_a_tcp_rst() {
    let server = start(None).await;
    let (bytes, end) = raw_tls(&server, &raw_confirm("x-gazua-fault: reset\r\n")).await;
    assert!(bytes.is_empty());
    assert_eq!(end.unwrap_err().kind(), ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn close_over_tls_is_a_bare_fin_without_close_notify() {
    let server = start(None).await;
    let (bytes, end) = raw_tls(&server, &raw_confirm("x-gazua-fault: close\r\n")).await;
    assert!(bytes.is_empty());
    // rustls reports a FIN that no close_notify announced as an unexpected EOF.
    assert_eq!(end.unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

#[tokio::test]
async fn a_normal_answer_over_tls_ends_with_close_notify() {
    let server = start(None).await;
    let (bytes, end) = raw_tls(&server, &raw_confirm("")).await;
    assert!(bytes.starts_with(b"HTTP/1.1 200"));
    assert!(end.is_ok(), "a clean close_notify, got {end:?}");
}

#[tokio::test]
async fn garbage_over_tls_is_raw_bytes_outside_the_tls_records() {
    let server = start(None).await;
    let (bytes, end) = raw_tls(&server, &raw_confirm("x-gazua-fault: garbage\r\n")).await;
    assert!(bytes.is_empty(), "no decrypted bytes");
    // The client's TLS layer finds bytes that are not a valid record.
    assert_eq!(end.unwrap_err().kind(), ErrorKind::InvalidData);
}

#[tokio::test]
async fn the_profile_refuses_every_handshake_with_access_denied() {
    let server = start(Some(
        r#"{"name": "refusing", "tls": {"handshake_refuse": "100%"}}"#,
    ))
    .await;
    let error = tls_connect(server.tls, &server.ca, &[b"http/1.1"])
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("AccessDenied"), "{error}");
    // Plain HTTP is untouched by the knob.
    assert_eq!(common::confirm(server.plain, &[]).await.status, 200);
    let line = "gazua_tls_handshakes_total{result=\"refused\"} 1";
    let metrics = metrics_showing(server.plain, &[line]).await;
    assert!(metrics.contains(line), "{metrics}");
}

#[tokio::test]
async fn the_profile_delays_the_handshake() {
    let server = start(Some(
        r#"{"name": "slow-tls", "tls": {"handshake_latency": "300ms"}}"#,
    ))
    .await;
    let start = Instant::now();
    let stream = tls_connect(server.tls, &server.ca, &[b"http/1.1"])
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Wide: a loaded 2-core machine may be slow, never faster than the delay.
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Once made, the connection serves at once: the delay is paid per connection.
    let (status, _, decision) = confirm_h1(stream).await;
    assert_eq!(status, 200);
    assert!(decision.contains("latency=0.000ms"), "{decision}");
}

#[test]
fn a_bad_tls_knob_is_a_located_profile_error() {
    let error = gazua_pay::profile::Plan::parse(
        r#"{"name": "x", "tls": {"handshake_refuse": 120}}"#,
        "x.json",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("handshake_refuse: expected a percentage from 0 to 100"),
        "{error}"
    );
    let error = gazua_pay::profile::Plan::parse(
        r#"{"name": "x", "tls": {"handshake_latency": "lognormal(p50=80)"}}"#,
        "x.json",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("latency"), "{error}");
}

async fn metrics(plain: SocketAddr) -> String {
    let reply = common::send(plain, "GET", "/metrics", &[], "").await;
    String::from_utf8(reply.body.to_vec()).unwrap()
}

/// The metrics once they show every line given (the server counts a handshake just after the
/// client has seen it end), at most 10 s.
async fn metrics_showing(plain: SocketAddr, lines: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = metrics(plain).await;
        if lines.iter().all(|l| metrics.contains(l)) || Instant::now() > deadline {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn metrics_count_handshakes_versions_and_alpn() {
    let server = start(None).await;
    for alpn in [&[&b"h2"[..]][..], &[b"http/1.1"], &[]] {
        let stream = tls_connect(server.tls, &server.ca, alpn).await.unwrap();
        drop(stream);
    }
    let lines = [
        "gazua_tls_handshakes_total{result=\"ok\"} 3",
        "gazua_tls_connections_total{alpn=\"h2\",version=\"tls1_3\"} 1",
        "gazua_tls_connections_total{alpn=\"http1_1\",version=\"tls1_3\"} 1",
        "gazua_tls_connections_total{alpn=\"none\",version=\"tls1_3\"} 1",
        "gazua_tls_handshake_duration_seconds_count 3",
    ];
    let metrics = metrics_showing(server.plain, &lines).await;
    for line in lines {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
}

// ---- certificate files: checked at start, reloaded on SIGHUP ----

/// A CA and a leaf for localhost signed by it, written as PEM files in `dir` under `stem`.
/// Returns (cert path, key path, CA PEM).
fn write_pair(dir: &Path, stem: &str, expired: bool) -> (PathBuf, PathBuf, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, leaf.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, ca.pem())
}

fn files(cert: &Path, key: &Path) -> Config {
    let mut config = common::config();
    config.tls = Some(TlsSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        identity: TlsIdentity::Files {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
    });
    config
}

#[tokio::test]
async fn an_expired_or_mismatched_pair_is_refused_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (old_cert, old_key, _) = write_pair(dir.path(), "old", true);
    let error = Server::bind(files(&old_cert, &old_key))
        .await
        .err()
        .expect("an expired certificate is refused")
        .to_string();
    assert!(
        error.contains("the certificate expired on") && error.contains("old.crt"),
        "{error}"
    );

    let (cert_a, _, _) = write_pair(dir.path(), "a", false);
    let (_, key_b, _) = write_pair(dir.path(), "b", false);
    let error = Server::bind(files(&cert_a, &key_b))
        .await
        .err()
        .expect("a key that is not the certificate's is refused")
        .to_string();
    assert!(
        error.contains("b.key is not the private key of --tls-cert") && error.contains("a.crt"),
        "{error}"
    );

    let error = Server::bind(files(&cert_a, &dir.path().join("missing.key")))
        .await
        .err()
        .expect("a missing key is refused")
        .to_string();
    assert!(
        error.contains("--tls-key") && error.contains("cannot read"),
        "{error}"
    );
}

#[test]
fn the_binary_refuses_a_mismatched_pair_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, _, _) = write_pair(dir.path(), "a", false);
    let (_, key_b, _) = write_pair(dir.path(), "b", false);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gazua"))
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert_a)
        .arg("--tls-key")
        .arg(&key_b)
        .env_remove("GAZUA_LISTEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not the private key of --tls-cert"),
        "{stderr}"
    );
}

/// Waits (bounded) for a log line of the binary with this message.
fn wait_for_log(binary: &Binary, message: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(log) = binary
            .logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l["message"] == message)
        {
            return log.clone();
        }
        assert!(Instant::now() < deadline, "no log line {message:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_it_on_a_bad_pair() {
    let runtime = common::runtime();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_a) = write_pair(dir.path(), "live", false);
    let binary = Binary::start(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let tls: SocketAddr = binary.startup["tls"].as_str().unwrap().parse().unwrap();
    runtime.block_on(async {
        let (status, _, _) =
            confirm_h1(tls_connect(tls, ca_a.as_bytes(), &[]).await.unwrap()).await;
        assert_eq!(status, 200);
    });

    // A new pair from another CA replaces the files; SIGHUP.
    let (new_cert, new_key, ca_b) = write_pair(dir.path(), "next", false);
    std::fs::copy(&new_cert, &cert).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    binary.signal("-HUP");
    wait_for_log(&binary, "tls certificate reloaded");
    runtime.block_on(async {
        let stream = tls_connect(tls, ca_b.as_bytes(), &[]).await;
        let (status, _, _) = confirm_h1(stream.expect("the new certificate serves")).await;
        assert_eq!(status, 200);
        assert!(tls_connect(tls, ca_a.as_bytes(), &[]).await.is_err());
    });

    // A mismatched pair is refused on SIGHUP; the certificate in force keeps serving.
    let (_, other_key, _) = write_pair(dir.path(), "other", false);
    std::fs::copy(&other_key, &key).unwrap();
    binary.signal("-HUP");
    let refused = wait_for_log(
        &binary,
        "tls certificate reload refused; the certificate in force keeps serving",
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("is not the private key of --tls-cert"),
        "{refused}"
    );
    runtime.block_on(async {
        let stream = tls_connect(tls, ca_b.as_bytes(), &[]).await;
        assert_eq!(confirm_h1(stream.unwrap()).await.0, 200);
    });
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_says_hello_is_closed_at_the_first_request_deadline() {
    let server = start(None).await;
    let mut silent = TcpStream::connect(server.tls).await.unwrap();
    let start = tokio::time::Instant::now();
    let (bytes, end) = tokio::time::timeout(
        Duration::from_secs(60),
        common::read_until_closed(&mut silent),
    )
    .await
    .expect("the server closes a silent connection");
    // Paused time: the runtime jumps to the deadline once every task waits. The connection's
    // first-request clock (--header-timeout, 5 s from accept) covers the handshake too.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert!(bytes.is_empty(), "{bytes:?} {end:?}");
}
