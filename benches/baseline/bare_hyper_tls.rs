//! The HTTPS baseline for benches/tls.sh: a bare hyper 1.x server behind tokio-rustls with the
//! same rustls configuration as Gazua's `--tls-listen` (ring provider, TLS 1.2 and 1.3, ALPN
//! h2 + http/1.1) and the same certificate files as Gazua's `--tls-cert/--tls-key`.
//! It reads the request, waits `x-delay-ms` on a tokio timer, and answers a static JSON body of
//! Gazua's answer size — nothing else, so the ratio is Gazua's cost over TLS + hyper itself.
//!
//! ```text
//! cargo run --release --example bare-hyper-tls -- --listen 127.0.0.1:8443 --body-bytes 1534 \
//!     --cert cert.pem --key key.pem
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpSocket;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

fn tls_config(cert: &str, key: &str) -> ServerConfig {
    let chain = CertificateDer::pem_file_iter(cert)
        .expect("--cert: a PEM file")
        .collect::<Result<Vec<_>, _>>()
        .expect("--cert: PEM certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("--key: a PEM private key");
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and its key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

async fn answer(
    body: Bytes,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let arrival = Instant::now();
    let delay = req
        .headers()
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    req.into_body().collect().await?;
    if !delay.is_zero() {
        tokio::time::sleep_until(arrival + delay).await;
    }
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .expect("a static response"))
}

fn main() {
    let mut listen: SocketAddr = "127.0.0.1:8443".parse().unwrap();
    let mut body_bytes = 300usize;
    let (mut cert, mut key) = (String::new(), String::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v.parse().expect("--listen expects ADDR:PORT"),
            ("--body-bytes", Some(v)) => {
                body_bytes = v.parse().expect("--body-bytes expects a number of bytes")
            }
            ("--cert", Some(v)) => cert = v,
            ("--key", Some(v)) => key = v,
            _ => panic!(
                "usage: bare-hyper-tls --listen ADDR --body-bytes N --cert PEM --key PEM (got {arg:?})"
            ),
        }
    }
    let mut json = String::from("{\"status\":\"DONE\",\"pad\":\"");
    json.push_str(&"x".repeat(body_bytes.saturating_sub(json.len() + 2)));
    json.push_str("\"}");
    let body = Bytes::from(json);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(listen).unwrap();
        let listener = socket.listen(65_535).unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls_config(&cert, &key)));
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        println!("{{\"message\":\"serving\",\"listen\":\"{listen}\",\"body_bytes\":{body_bytes}}}");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, builder, body) = (acceptor.clone(), builder.clone(), body.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(move |req| answer(body.clone(), req));
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
