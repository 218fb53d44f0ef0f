//! The shared ledger on a real `redis-server` (started here on a free port, stopped after):
//! three real Gazua processes behave as one PG, concurrent changes never overspend, and a
//! stopped Redis is a 503 that heals by itself; `rediss://` reaches a TLS-only Redis whose
//! certificate a CA of the test's own signed.
//!
//! These tests need `redis-server` on the PATH (.ci/run installs it); without it they fail.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Binary, Reply, send};
use http::StatusCode;

/// A `redis-server` of this test's own, on a free loopback port, killed on drop.
struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    fn start() -> Redis {
        Redis::on(free_port())
    }

    /// On a given port (a restart keeps the port, as a restarted Redis service does).
    fn on(port: u16) -> Redis {
        let mut redis = Redis::spawn(port, &["--port", &port.to_string()]);
        redis.wait_until(|redis| redis.pong());
        redis
    }

    /// TLS only (`--port 0`), on a free port, presenting `certificates`' server certificate.
    fn start_tls(certificates: &Certificates) -> Redis {
        let port = free_port();
        let path = |p: &Path| p.to_str().unwrap().to_owned();
        let mut redis = Redis::spawn(
            port,
            &[
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--tls-cert-file",
                &path(&certificates.server_cert),
                "--tls-key-file",
                &path(&certificates.server_key),
                "--tls-ca-cert-file",
                &path(&certificates.ca),
                "--tls-auth-clients",
                "no",
            ],
        );
        // Nothing answers plain text there: it is up once the port accepts.
        redis.wait_until(|redis| TcpStream::connect(("127.0.0.1", redis.port)).is_ok());
        redis
    }

    fn spawn(port: u16, listen: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args(listen)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        Redis { port, child }
    }

    fn wait_until(&mut self, up: impl Fn(&Redis) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !up(self) {
            let exited = self.child.try_wait().unwrap();
            assert!(exited.is_none(), "redis-server exited: {exited:?}");
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn pong(&self) -> bool {
        self.command("PING").starts_with("+PONG")
    }

    /// One inline command; its raw answer (empty if Redis is not there).
    fn command(&self, command: &str) -> String {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        if stream
            .write_all(format!("{command}\r\n").as_bytes())
            .is_err()
        {
            return String::new();
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA of the test's own and a server certificate it signed for `127.0.0.1` and `localhost`,
/// written as PEM files into a temporary folder.
struct Certificates {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Certificates {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "gazua test ca");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(names)
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Certificates {
            ca: write("ca.pem", ca.pem()),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// Three Gazua processes sharing `redis`, as a fleet behind a load balancer.
fn fleet(redis: &Redis) -> [Binary; 3] {
    let url = redis.url();
    let args = ["--profile", "happy", "--seed", "7", "--ledger", &url];
    [
        Binary::start(&args),
        Binary::start(&args),
        Binary::start(&args),
    ]
}

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send(addr, "POST", path, headers, body).await
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, "GET", path, &[], "").await
}

fn create_body(order: &str, amount: u64) -> String {
    format!(
        r#"{{"method":"CARD","amount":{amount},"orderId":"{order}","orderName":"티셔츠","successUrl":"https://shop.test/ok","failUrl":"https://shop.test/fail"}}"#
    )
}

fn confirm_body(key: &str, order: &str, amount: u64) -> String {
    format!(r#"{{"paymentKey":"{key}","orderId":"{order}","amount":{amount}}}"#)
}

fn cancel_body(amount: u64) -> String {
    format!(r#"{{"cancelReason":"고객 변심","cancelAmount":{amount}}}"#)
}

fn code(reply: &Reply) -> String {
    reply.json()["code"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toss_lifecycle_runs_across_three_instances_sharing_one_redis() {
    let redis = Redis::start();
    let [a, b, c] = fleet(&redis);
    let (a, b, c) = (a.addr, b.addr, c.addr);

    // Create on A, confirm on B, a second confirm on C is refused.
    let created = post(
        a,
        "/v1/payments",
        &[],
        &create_body("order-fleet-1", 10_000),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let key = created.json()["paymentKey"].as_str().unwrap().to_owned();
    let confirm = confirm_body(&key, "order-fleet-1", 10_000);
    let confirmed = post(b, "/v1/payments/confirm", &[], &confirm).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    assert_eq!(confirmed.json()["status"], "DONE");
    let again = post(c, "/v1/payments/confirm", &[], &confirm).await;
    assert_eq!(
        (again.status, code(&again).as_str()),
        (StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT")
    );

    // Partial cancels split over A, B and C add up exactly; more than the balance is refused.
    let cancel = format!("/v1/payments/{key}/cancel");
    for (addr, amount, balance) in [(a, 1000, 9000), (b, 2000, 7000), (c, 3000, 4000)] {
        let reply = post(addr, &cancel, &[], &cancel_body(amount)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.json()["balanceAmount"], balance);
        assert_eq!(reply.json()["status"], "PARTIAL_CANCELED");
    }
    let over = post(a, &cancel, &[], &cancel_body(5000)).await;
    assert_eq!(
        (over.status, code(&over).as_str()),
        (StatusCode::FORBIDDEN, "NOT_CANCELABLE_AMOUNT"),
    );
    let rest = post(b, &cancel, &[], r#"{"cancelReason":"전액"}"#).await;
    assert_eq!(rest.json()["status"], "CANCELED");
    assert_eq!(rest.json()["cancels"].as_array().unwrap().len(), 4);
    let twice = post(c, &cancel, &[], r#"{"cancelReason":"또"}"#).await;
    assert_eq!(code(&twice), "ALREADY_CANCELED_PAYMENT");
    let seen = get(a, &format!("/v1/payments/{key}")).await.json();
    assert_eq!(
        (seen["status"].as_str(), seen["balanceAmount"].as_u64()),
        (Some("CANCELED"), Some(0))
    );

    // A confirm whose answer is lost on A is reconciled by orderId on C.
    let lost_body = confirm_body("pk_fleet_lost", "order-fleet-lost", 5000);
    let request = format!(
        "POST /v1/payments/confirm HTTP/1.1\r\nhost: gazua\r\ncontent-type: application/json\r\nx-gazua-outcome: lost(close)\r\ncontent-length: {}\r\n\r\n{lost_body}",
        lost_body.len()
    );
    let lost = common::raw(a, &request).await;
    assert!(lost.bytes.is_empty(), "a lost answer sends nothing");
    let found = get(c, "/v1/payments/orders/order-fleet-lost").await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    assert_eq!(found.json()["paymentKey"], "pk_fleet_lost");
    assert_eq!(found.json()["status"], "DONE");

    // An Idempotency-Key answered on A is replayed, identical, by B.
    let body = confirm_body("pk_fleet_idem", "order-fleet-idem", 3000);
    let headers = [("idempotency-key", "idem-fleet-1")];
    let first = post(a, "/v1/payments/confirm", &headers, &body).await;
    assert_eq!(first.status, StatusCode::OK);
    let replayed = post(b, "/v1/payments/confirm", &headers, &body).await;
    assert_eq!(
        (replayed.status, &replayed.body),
        (first.status, &first.body)
    );
    let plain = post(c, "/v1/payments/confirm", &[], &body).await;
    assert_eq!(
        code(&plain),
        "ALREADY_PROCESSED_PAYMENT",
        "without the key it is a repeat"
    );

    // While A is still processing a key (its answer is due in 1 s), B and C answer 409; after
    // it, they replay A's answer.
    let body = confirm_body("pk_fleet_slow", "order-fleet-slow", 3000);
    let headers = [
        ("idempotency-key", "idem-fleet-2"),
        ("x-gazua-latency", "1s"),
    ];
    let slow = {
        let body = body.clone();
        tokio::spawn(async move { post(a, "/v1/payments/confirm", &headers, &body).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis
        .command("KEYS gazua:idem:*")
        .matches("gazua:idem:")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "A never reserved the key");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // (Without A's latency header, so that each 409 comes at once, well before A's answer.)
    for addr in [b, c] {
        let early = post(addr, "/v1/payments/confirm", &headers[..1], &body).await;
        assert_eq!(
            (early.status, code(&early).as_str()),
            (StatusCode::CONFLICT, "IDEMPOTENT_REQUEST_PROCESSING")
        );
    }
    let first = slow.await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    let late = post(c, "/v1/payments/confirm", &headers, &body).await;
    assert_eq!((late.status, &late.body), (first.status, &first.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_over_three_instances_never_overspend() {
    let redis = Redis::start();
    let fleet = fleet(&redis);
    let addrs: Vec<SocketAddr> = fleet.iter().map(|b| b.addr).collect();

    // 100 concurrent confirms of one paymentKey: exactly one approves.
    let body = confirm_body("pk_race_confirm", "order-race-confirm", 10_000);
    let confirms: Vec<_> = (0..100)
        .map(|i| {
            let (addr, body) = (addrs[i % 3], body.clone());
            tokio::spawn(async move { post(addr, "/v1/payments/confirm", &[], &body).await })
        })
        .collect();
    let mut done = 0;
    for task in confirms {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => done += 1,
            _ => assert_eq!(code(&reply), "ALREADY_PROCESSED_PAYMENT"),
        }
    }
    assert_eq!(done, 1, "exactly one confirm approves");

    // 200 concurrent partial cancels of 300 on a 10,000 payment: 33 fit, the rest are refused.
    let cancel = "/v1/payments/pk_race_confirm/cancel";
    let cancels: Vec<_> = (0..200)
        .map(|i| {
            let addr = addrs[i % 3];
            tokio::spawn(async move { post(addr, cancel, &[], &cancel_body(300)).await })
        })
        .collect();
    let mut canceled = 0;
    for task in cancels {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => canceled += 300,
            _ => assert_eq!(code(&reply), "NOT_CANCELABLE_AMOUNT", "{:?}", reply.body),
        }
    }
    assert_eq!(canceled, 33 * 300);
    let seen = get(addrs[0], "/v1/payments/pk_race_confirm").await.json();
    assert_eq!(seen["balanceAmount"], 10_000 - 33 * 300);
    assert_eq!(seen["cancels"].as_array().unwrap().len(), 33);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_prompt_503_and_answers_resume_when_it_is_back() {
    let redis = Redis::start();
    let port = redis.port;
    let args = ["--profile", "happy", "--ledger", &redis.url()];
    let gazua = Binary::start(&[&args[..], &["--ledger-timeout", "300ms"]].concat());
    let addr = gazua.addr;
    let fresh = |n: u32| confirm_body(&format!("pk_fault_{n}"), &format!("order-fault-{n}"), 1000);
    let ready = || async move { get(addr, "/__gazua/ready").await.status };

    assert_eq!(
        post(addr, "/v1/payments/confirm", &[], &fresh(1))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(ready().await, StatusCode::OK);

    // Frozen (accepts nothing, answers nothing): the call times out after --ledger-timeout
    // (300 ms), the answer is a 503 saying so. Under a second: the default timeout (1 s)
    // could not have answered that soon.
    redis.signal("-STOP");
    let started = Instant::now();
    let frozen = post(addr, "/v1/payments/confirm", &[], &fresh(2)).await;
    let took = started.elapsed();
    assert_eq!(frozen.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&frozen), "GAZUA_LEDGER_UNAVAILABLE");
    let message = frozen.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("redis"), "{message}");
    assert!(message.contains("within 300 ms"), "{message}");
    assert!(
        took >= Duration::from_millis(300),
        "answered after {took:?}"
    );
    assert!(took < Duration::from_secs(1), "answered after {took:?}");
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    redis.signal("-CONT");

    // Gone: refused connections are a 503 at once, readiness fails.
    drop(redis);
    let started = Instant::now();
    let down = post(addr, "/v1/payments/confirm", &[], &fresh(3)).await;
    assert_eq!(
        (down.status, code(&down).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "GAZUA_LEDGER_UNAVAILABLE")
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    // Gazua's own failure is not a PG answer: sent at once, without the decided wait or fault,
    // and X-Gazua-Decision says what was delivered.
    let started = Instant::now();
    let headers = [("x-gazua", "latency=5s; fault=reset")];
    let down = post(addr, "/v1/payments/confirm", &headers, &fresh(5)).await;
    assert_eq!(code(&down), "GAZUA_LEDGER_UNAVAILABLE");
    assert!(started.elapsed() < Duration::from_secs(3));
    let said = down.decision();
    assert!(said.contains("GAZUA_LEDGER_UNAVAILABLE"), "{said}");
    assert!(!said.contains("reset"), "{said}");
    let inquiry = get(addr, "/v1/payments/orders/order-fault-1").await;
    assert_eq!(
        code(&inquiry),
        "GAZUA_LEDGER_UNAVAILABLE",
        "never a false 404"
    );

    // Back on the same port: readiness and answers resume, the same process.
    let _redis = Redis::on(port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while ready().await != StatusCode::OK {
        assert!(Instant::now() < deadline, "readiness did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = post(addr, "/v1/payments/confirm", &[], &fresh(4)).await;
    assert_eq!(back.status, StatusCode::OK, "{:?}", back.body);

    let metrics = String::from_utf8(get(addr, "/metrics").await.body.to_vec()).unwrap();
    let value = |line: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in the scrape"))
    };
    assert!(value("gazua_ledger_errors_total{kind=\"timeout\"}") >= 1.0);
    assert!(value("gazua_ledger_errors_total{kind=\"unavailable\"}") >= 1.0);
    assert!(value("gazua_ledger_call_seconds_count") >= 4.0);
}

#[test]
fn a_bad_redis_url_is_refused_with_what_was_expected() {
    for (url, expected) in [
        ("redis://", "expected redis[s]://"),
        ("rediss://cache:6380/#insecure", "--ledger-ca"),
        ("mysql://db", "expected memory, stateless, redis://"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gazua"))
            .args(["--ledger", url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "{url} accepted");
        assert!(stderr.contains(expected), "{url}: {stderr}");
    }
}

#[test]
fn bad_ledger_tls_and_timeout_flags_are_refused_with_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let tls = "rediss://127.0.0.1:6380";
    for (args, expected) in [
        (
            vec!["--ledger", tls, "--ledger-ca", not_pem],
            "expected pem",
        ),
        (vec!["--ledger", tls, "--ledger-ca", missing], "cannot read"),
        (
            vec!["--ledger", "redis://127.0.0.1:6379", "--ledger-ca", not_pem],
            "is for a rediss:// (tls) ledger",
        ),
        (vec!["--ledger-timeout", "0"], "above zero"),
        (vec!["--ledger-timeout", "soon"], "above zero"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_gazua"))
            .args(["--listen", "127.0.0.1:0"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// `rediss://` to a TLS-only Redis (no plain port) whose certificate a private CA signed:
/// trusted through `--ledger-ca`, the lifecycle is shared over TLS (a confirm on A, the second
/// one refused on B); without it the certificate is refused, never used unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_reaches_a_tls_redis_trusted_through_the_ledger_ca() {
    let certificates = Certificates::new();
    let redis = Redis::start_tls(&certificates);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let ca = certificates.ca.to_str().unwrap();
    let args = ["--profile", "happy", "--ledger", &url, "--ledger-ca", ca];
    let (a, b) = (Binary::start(&args), Binary::start(&args));

    let body = confirm_body("pk_tls_1", "order-tls-1", 7000);
    let confirmed = post(a.addr, "/v1/payments/confirm", &[], &body).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{:?}", confirmed.body);
    assert_eq!(confirmed.json()["status"], "DONE");
    let again = post(b.addr, "/v1/payments/confirm", &[], &body).await;
    assert_eq!(
        (again.status, code(&again).as_str()),
        (StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT")
    );
    let found = get(b.addr, "/v1/payments/orders/order-tls-1").await;
    assert_eq!(found.json()["paymentKey"], "pk_tls_1");
    assert_eq!(get(a.addr, "/__gazua/ready").await.status, StatusCode::OK);

    // The same Redis without --ledger-ca: the test CA is no web root, so no call gets through.
    let untrusting = Binary::start(&["--profile", "happy", "--ledger", &url]);
    let body = confirm_body("pk_tls_2", "order-tls-2", 7000);
    let refused = post(untrusting.addr, "/v1/payments/confirm", &[], &body).await;
    assert_eq!(
        (refused.status, code(&refused).as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "GAZUA_LEDGER_UNAVAILABLE")
    );
    let ready = get(untrusting.addr, "/__gazua/ready").await.status;
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE);
    // Why, once the health check's own connection attempt has been refused: in the answer's
    // message and in the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let refused = post(untrusting.addr, "/v1/payments/confirm", &[], &body).await;
        assert_eq!(code(&refused), "GAZUA_LEDGER_UNAVAILABLE");
        let message = refused.json()["message"].as_str().unwrap().to_lowercase();
        if message.contains("certificate") {
            break;
        }
        assert!(Instant::now() < deadline, "never said why: {message}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logs = untrusting.logs.lock().unwrap();
    let said = logs.iter().find(|l| l["message"] == "ledger unreachable");
    let said = said.expect("the refused certificate is logged");
    assert!(
        said["error"].as_str().unwrap().contains("certificate"),
        "{said}"
    );
}

/// The Redis memory per payment the README states (0.75 KB; 1.9 KB with an Idempotency-Key
/// answer), within a margin: measured as the README says, `used_memory` over 1,000 payments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_memory_per_payment_is_what_the_readme_says() {
    let redis = Redis::start();
    let gazua = Binary::start(&["--profile", "happy", "--ledger", &redis.url()]);
    let used = || -> f64 {
        let info = redis.command("INFO memory");
        let line = info
            .lines()
            .find(|l| l.starts_with("used_memory:"))
            .unwrap();
        line["used_memory:".len()..].trim().parse().unwrap()
    };
    const N: usize = 1000;
    // Gazua's connection (and its buffers) exists before the first measure.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(gazua.addr, "/__gazua/ready").await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = used();
    let mut keys = Vec::new();
    for i in 0..N {
        let body = create_body(&format!("order-mem-{i:08}"), 15_000);
        let reply = post(gazua.addr, "/v1/payments", &[], &body).await;
        keys.push(reply.json()["paymentKey"].as_str().unwrap().to_owned());
    }
    for (i, key) in keys.iter().enumerate() {
        let body = confirm_body(key, &format!("order-mem-{i:08}"), 15_000);
        let path = "/v1/payments/confirm";
        let reply = post(gazua.addr, path, &[], &body).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let payments = used();
    for i in 0..N {
        let body = confirm_body(&format!("pk_mem_{i}"), &format!("order-key-{i:08}"), 15_000);
        let key = format!("5f0e6c1a-7b2d-4e8f-9a3c-{i:012}");
        let headers = [("idempotency-key", key.as_str())];
        let path = "/v1/payments/confirm";
        let reply = post(gazua.addr, path, &headers, &body).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let with_keys = used();
    let per_payment = (payments - before) / N as f64;
    let per_keyed = (with_keys - payments) / N as f64;
    println!("redis: {per_payment:.0} B per payment, {per_keyed:.0} B with an Idempotency-Key");
    assert!(
        (600.0..=900.0).contains(&per_payment),
        "{per_payment} B per payment"
    );
    assert!(
        (1600.0..=2200.0).contains(&per_keyed),
        "{per_keyed} B with a key"
    );
}
