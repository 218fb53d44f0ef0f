//! The protective layers every request passes through, in one place (linkerd2-proxy style:
//! each layer says why it is there and why in that order), and the per-connection settings of
//! hyper that protect the same way one level down.
//!
//! Outermost first — a request enters at the top:
//!
//! 1. **hyper's connection settings** ([`builder`]): head size, HTTP/1 header-read timer,
//!    HTTP/2 keep-alive ping. They act before a request exists, so no tower layer can.
//! 2. **the connection's clocks and the cap** (`conn.rs`): first-request deadline from accept,
//!    HTTP/2 idle timeout, shedding at the cap. Also connection-level, below tower.
//! 3. **`CatchPanicLayer`** (tower-http): outermost of the request layers, so that a panic
//!    anywhere below it — in the handler or a layer — becomes a PG-shaped 500 for that request,
//!    counted in `gazua_panics_total`, instead of a dropped connection.
//! 4. **the handler** (`lifecycle::handle`), whose own bounds are part of the request's life:
//!    the body read has a deadline (`--body-timeout`) and a size limit (`--max-body`), and
//!    every wait is bounded by `--max-latency`.
//!
//! Layers considered and left out, and why:
//! - tower-http `RequestBodyLimitLayer`: its 413 has a plain-text body, not the PG's error
//!   shape; the handler's `Limited` read gives the PG-shaped 413 the API promises.
//! - tower-http `RequestBodyTimeoutLayer`: it bounds the gap between two body frames, so a
//!   client sending one byte a second never trips it; the handler bounds the whole body read.
//! - tower `TimeoutLayer` on the whole request: every Gazua request is meant to wait (up to
//!   `--max-latency`, or to `hang`), so a request timeout would fight the product; the waits
//!   are already bounded.
//! - tower `ConcurrencyLimitLayer` / `LoadShedLayer`: a waiting request costs a timer, not a
//!   thread; the scarce resource is connections (file descriptors), which this layer cannot
//!   see — the cap in `conn.rs` guards them. HTTP/2 streams per connection are bounded by
//!   hyper's `max_concurrent_streams` (200).
//!
//! Cost: `cargo bench --bench hot_path -- stack` sets the stack against the bare handler:
//! 111 ns against 48 ns, so `CatchPanicLayer` (its `catch_unwind` and the boxed body) adds
//! about 60 ns a request — well under the 0.5 µs the design allows for a layer (2-core shared
//! machine, 2026-12-01).

use std::any::Any;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use prometheus::IntCounter;
use tower::ServiceBuilder;
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, ResponseForPanic};

use super::fault::GazuaBody;
use crate::api::{ReplyCode, error_reply};
use crate::codes;

/// Largest request head hyper buffers (request line and headers); past it the client gets 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// HTTP/2 keep-alive: a ping every 20 s on a connection with no traffic, closed when one goes
/// unanswered for 20 s (a peer that vanished without a FIN).
const H2_PING_EVERY: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What a response body becomes after the stack.
pub type StackBody = UnsyncBoxBody<Bytes, tower::BoxError>;

/// Wraps a request handler in the request layers.
pub fn layered<S>(handler: S, panics: IntCounter) -> CatchPanic<S, PanicAnswer> {
    ServiceBuilder::new()
        // A panic is a Gazua bug: answered, counted, logged; the connection stays usable.
        .layer(CatchPanicLayer::custom(PanicAnswer(panics)))
        .service(handler)
}

/// hyper's per-connection settings (both protocols; hyper-util detects which).
pub fn builder(idle_timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // hyper's header-read timeout also closes idle keep-alive connections once a timer is
        // set. The idle watch in `conn.rs` closes them at `--idle-timeout` (above load
        // balancers' 60 s) for both protocols and counts it; hyper's timer, a second later, is
        // the backstop and still bounds a slow head on a later request. The first request has
        // its own, shorter deadline from accept (`conn.rs`).
        .header_read_timeout(idle_timeout + Duration::from_secs(1))
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

/// The answer for a request whose handler panicked: the PG's internal-error shape.
#[derive(Clone)]
pub struct PanicAnswer(IntCounter);

impl ResponseForPanic for PanicAnswer {
    type ResponseBody = GazuaBody;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send + 'static>) -> Response<GazuaBody> {
        self.0.inc();
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message");
        tracing::error!(
            panic = message,
            "a request handler panicked (a gazua bug); answered 500"
        );
        let name = "FAILED_INTERNAL_SYSTEM_PROCESSING";
        let code =
            codes::lookup(name).map_or(ReplyCode::Custom(codes::CodeKind::Error), ReplyCode::Known);
        let reply = error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            code,
            name,
            "gazua failed while answering this request (a bug in gazua, counted in gazua_panics_total); the connection stays usable",
        );
        let mut response = Response::new(GazuaBody::full(reply.body));
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use http::{Request, StatusCode};
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;

    use crate::config::Config;
    use crate::server::Server;

    async fn get(
        sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        path: &str,
    ) -> (StatusCode, String) {
        let request = Request::get(path)
            .header("host", "gazua")
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("an answer");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The panic route exists only in this crate's unit-test build (`#[cfg(test)]` in
    /// `ops::answer`): production builds cannot be made to panic on purpose.
    #[tokio::test]
    async fn a_panicking_handler_answers_a_pg_shaped_500_counts_it_and_keeps_the_connection() {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap());
        config.profile = Some("happy".to_owned());
        let server = Server::bind(config).await.unwrap();
        let addr = server.local_addr().unwrap();
        let state = Arc::clone(server.state());
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));

        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let (status, body) = get(&mut sender, "/__gazua/test/panic").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["code"], "FAILED_INTERNAL_SYSTEM_PROCESSING");
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("gazua_panics_total")
        );
        // The same connection keeps serving, and the panic is counted.
        let (status, metrics) = get(&mut sender, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(metrics.contains("\ngazua_panics_total 1\n"), "{metrics}");
        assert_eq!(state.metrics.panics.get(), 1);
        assert_eq!(
            state.metrics.in_flight.get(),
            0,
            "the panic dropped its guards"
        );
    }
}
