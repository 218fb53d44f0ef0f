//! Test support: a real server on `127.0.0.1:0` (in-process or the real binary), a small HTTP
//! client over real sockets, and a raw TCP client that reports exactly how a connection ended.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use gazua_pay::config::Config;
use gazua_pay::server::Server;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const CONFIRM_BODY: &str =
    r#"{"paymentKey":"pk_test_1","orderId":"order-0001","amount":15000}"#;

/// A confirm body for a payment no other request of this test process confirmed: the memory
/// ledger answers a second confirm of a key with `ALREADY_PROCESSED_PAYMENT`, as the real PG does.
pub fn fresh_confirm_body() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(r#"{{"paymentKey":"pk_test_{n}","orderId":"order-{n:06}","amount":15000}}"#)
}

/// Settings for a test server: loopback, the `happy` profile (approved, no latency).
pub fn config() -> Config {
    let mut config = Config::new("127.0.0.1:0".parse().unwrap());
    config.profile = Some("happy".to_owned());
    config
}

/// An in-process server; dropping `stop` (or sending on it) starts its graceful shutdown.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The `--admin-listen` address, when the config asked for one.
    pub admin: Option<SocketAddr>,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(mut config: Config) -> TestServer {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(config).await.expect("bind 127.0.0.1:0");
        let addr = server.local_addr().unwrap();
        let admin = server.admin_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            admin,
            stop: Some(stop),
            task,
        }
    }

    /// A server with the `happy` profile: every payment approved at once, so a test sees only
    /// what it asks for.
    pub async fn default() -> TestServer {
        TestServer::start(config()).await
    }

    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        self.task.await.unwrap().unwrap();
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn decision(&self) -> String {
        self.headers
            .get("x-gazua-decision")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// One field of `X-Gazua-Decision`, e.g. `latency` → `83.214ms`.
    pub fn decided(&self, field: &str) -> String {
        let decision = self.decision();
        decision
            .split("; ")
            .find_map(|kv| kv.strip_prefix(field).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {field} in X-Gazua-Decision: {decision:?}"))
            .to_owned()
    }

    /// The source `X-Gazua-Decision` names for one field (`outcome`, `status`, `latency`,
    /// `fault`), from `source=outcome:header,status:outcome,…`.
    pub fn source_of(&self, field: &str) -> String {
        let sources = self.decided("source");
        sources
            .split(',')
            .find_map(|kv| kv.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
            .unwrap_or_else(|| panic!("no {field} in source={sources:?}"))
            .to_owned()
    }

    pub fn decided_latency(&self) -> Duration {
        let text = self.decided("latency");
        let ms: f64 = text.strip_suffix("ms").unwrap().parse().unwrap();
        Duration::from_secs_f64(ms / 1000.0)
    }
}

/// One request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut sender = connect(addr).await;
    send_on(&mut sender, addr, method, path, headers, body).await
}

/// A fresh HTTP/1 keep-alive connection, its driver spawned.
pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// One request on an existing HTTP/1 connection.
pub async fn send_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    let typed = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
    if !body.is_empty() && !typed {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.expect("a response");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a whole body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Confirms a fresh payment.
pub async fn confirm(addr: SocketAddr, headers: &[(&str, &str)]) -> Reply {
    send(
        addr,
        "POST",
        "/v1/payments/confirm",
        headers,
        &fresh_confirm_body(),
    )
    .await
}

/// `POST path` with the JSON `body`, which must be answered 200: the answer's JSON (the created
/// or confirmed payment).
pub async fn post_ok(addr: SocketAddr, path: &str, body: &serde_json::Value) -> serde_json::Value {
    let reply = send(addr, "POST", path, &[], &body.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
    reply.json()
}

/// How a raw connection ended after a request was written.
#[derive(Debug)]
pub struct RawEnd {
    pub bytes: Vec<u8>,
    /// `Ok(())` for a clean EOF (FIN), the read error otherwise (RST is `ConnectionReset`).
    pub end: std::io::Result<()>,
    pub elapsed: Duration,
}

/// Reads until the peer ends the stream: every byte, and `Ok(())` for a clean end or the read
/// error that ended it.
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> (Vec<u8>, std::io::Result<()>) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        match stream.read(&mut buf).await {
            Ok(0) => break Ok(()),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(error) => break Err(error),
        }
    };
    (bytes, end)
}

/// Writes `request` on a fresh connection and reads until the peer closes it.
pub async fn raw(addr: SocketAddr, request: &str) -> RawEnd {
    let start = std::time::Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let (bytes, end) = read_until_closed(&mut stream).await;
    RawEnd {
        bytes,
        end,
        elapsed: start.elapsed(),
    }
}

/// A confirm request as raw HTTP/1.1 text with extra header lines (`connection: close`, so a
/// normal answer ends with FIN too).
pub fn raw_confirm(extra_headers: &str) -> String {
    let body = fresh_confirm_body();
    format!(
        "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// The real binary, serving on a free loopback port.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    /// The startup line ("serving"), as JSON.
    pub startup: serde_json::Value,
    /// The `--admin-listen` address, when it was given one.
    pub admin: Option<SocketAddr>,
    /// Every log line it wrote after "serving", as JSON.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Binary {
    pub fn start(args: &[&str]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gazua"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env_remove("GAZUA_LISTEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gazua binary starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let startup = loop {
            let line = lines.next().expect("gazua logs before exiting").unwrap();
            let log: serde_json::Value = serde_json::from_str(&line).expect("json log lines");
            if log["message"] == "serving" {
                break log;
            }
        };
        let addr = startup["listen"].as_str().unwrap().parse().unwrap();
        // `none` without --admin-listen.
        let admin = startup["admin"].as_str().and_then(|a| a.parse().ok());
        // Keep draining its log so it never blocks on a full pipe.
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(log) = serde_json::from_str(&line) {
                    kept.lock().unwrap().push(log);
                }
            }
        });
        Binary {
            child,
            addr,
            startup,
            admin,
            logs,
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "gazua did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A two-worker runtime for tests that drive the real binary from a plain `#[test]`.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The `q` quantile (0..=1) of sorted samples.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index]
}
