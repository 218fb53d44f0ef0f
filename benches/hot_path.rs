//! Micro-benchmarks of Gazua's per-request hot path, without sockets: routing, directive
//! parsing, deciding, latency sampling, rendering a confirm, the X-Gazua-Decision header and
//! metrics recording — and all of them in a row, to set against the server CPU per request that
//! benches/run.sh measures (the rest is hyper, tokio and the kernel).
//!
//! `cargo bench --bench hot_path` (about a minute); `cargo bench --bench hot_path -- decide`
//! runs the benchmarks whose name contains `decide`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use gazua_pay::api::{
    Api, ApiRequest, ApiSettings, Lang, LedgerChoice, Origin, Reply, ReplyCode, ready_now,
};
use gazua_pay::directive::{Latency, headers};
use gazua_pay::engine::{Asked, Engine};
use gazua_pay::metrics::Metrics;
use gazua_pay::profile::Profiles;
use gazua_pay::report::Delivered;
use gazua_pay::route::{self, Route};
use http::{HeaderMap, HeaderValue, Method};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const CONFIRM: &str = "/v1/payments/confirm";
const LOGNORMAL: &str = "lognormal(p50=80ms, p99=400ms)";

/// The headers wrk (and a typical load script) sends, with or without directives.
fn request_headers(directives: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("127.0.0.1:18480"));
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("content-length", HeaderValue::from_static("72"));
    h.insert("user-agent", HeaderValue::from_static("k6/0.54.0"));
    if directives {
        h.insert("x-gazua-latency", HeaderValue::from_static(LOGNORMAL));
        h.insert(
            "x-gazua-outcome",
            HeaderValue::from_static("98% approved, 2% declined"),
        );
        h.insert("x-gazua-fault", HeaderValue::from_static("1% reset"));
    }
    h
}

fn engine() -> Engine {
    Engine {
        flags: Default::default(),
        seed: 1,
        max_latency: Duration::from_secs(60),
        boot: std::time::SystemTime::now(),
    }
}

/// A confirm body for a payment never seen before (a repeat would be ALREADY_PROCESSED_PAYMENT).
fn confirm_body() -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(r#"{{"paymentKey":"pk_bench_{n}","orderId":"order-bench-{n}","amount":15000}}"#)
        .into_bytes()
}

fn benches(c: &mut Criterion) {
    let plain = request_headers(false);
    let directed = request_headers(true);

    c.bench_function("route/confirm", |b| {
        b.iter(|| route::route(black_box(&Method::POST), black_box(CONFIRM)))
    });

    c.bench_function("directive/from_headers/none", |b| {
        b.iter(|| headers::from_headers(black_box(&plain)).expect("no directives parse"))
    });
    c.bench_function("directive/from_headers/latency+outcome+fault", |b| {
        b.iter(|| headers::from_headers(black_box(&directed)).expect("typical directives parse"))
    });
    c.bench_function("directive/latency_parse/100ms", |b| {
        b.iter(|| Latency::parse(black_box("100ms")).expect("a fixed latency parses"))
    });
    c.bench_function("directive/latency_parse/lognormal", |b| {
        b.iter(|| Latency::parse(black_box(LOGNORMAL)).expect("a lognormal parses"))
    });

    let fixed = Latency::parse("100ms").expect("a fixed latency parses");
    let lognormal = Latency::parse(LOGNORMAL).expect("a lognormal parses");
    let mut rng = SmallRng::seed_from_u64(7);
    c.bench_function("latency_sample/fixed", |b| {
        b.iter(|| black_box(&fixed).sample(&mut rng))
    });
    c.bench_function("latency_sample/lognormal", |b| {
        b.iter(|| black_box(&lognormal).sample(&mut rng))
    });

    let engine = engine();
    let profiles = Profiles::shipped();
    // `happy` (no latency, every payment approved) is what benches/run.sh serves; `default`
    // adds per-route latencies and is what `gazua` with no flags serves.
    let happy = profiles
        .get("happy")
        .expect("the happy profile ships")
        .clone();
    let default = profiles.active().clone();
    let asked_directives = headers::from_headers(&directed).expect("typical directives parse");
    let asked = Asked {
        header: Some(&asked_directives),
        ..Asked::default()
    };
    c.bench_function("decide/happy_profile", |b| {
        b.iter(|| engine.decide(&happy, black_box(Route::Confirm), Asked::default(), None))
    });
    c.bench_function("decide/default_profile", |b| {
        b.iter(|| engine.decide(&default, black_box(Route::Confirm), Asked::default(), None))
    });
    c.bench_function("decide/header_mix", |b| {
        b.iter(|| engine.decide(&happy, black_box(Route::Confirm), asked, None))
    });
    c.bench_function("decide/header_mix_keyed", |b| {
        b.iter(|| engine.decide(&happy, black_box(Route::Confirm), asked, Some("order-0001")))
    });
    c.bench_function("decide_with/header_mix", |b| {
        b.iter(|| engine.decide_with(&happy, None, black_box(Route::Confirm), asked, &mut rng))
    });

    let decision = engine.decide(&happy, Route::Confirm, Asked::default(), None);
    let approved = Reply {
        status: http::StatusCode::OK,
        body: bytes::Bytes::from_static(b"{}"),
        code: ReplyCode::Ok,
        retry_after: None,
        origin: Origin::Decision,
    };
    c.bench_function("decision/header_value", |b| {
        b.iter(|| Delivered::decided(black_box(&decision), &approved).header_value())
    });

    let target = route::route(&Method::POST, CONFIRM);
    for (name, ledger) in [
        (
            "memory",
            LedgerChoice::Memory {
                capacity: 1_000_000,
            },
        ),
        ("stateless", LedgerChoice::Stateless),
    ] {
        let api = Api::new(ApiSettings {
            ledger,
            ..ApiSettings::default()
        });
        c.bench_function(&format!("api_answer/confirm_{name}"), |b| {
            b.iter_batched(
                confirm_body,
                |body| {
                    let req = ApiRequest {
                        target: &target,
                        method: &Method::POST,
                        headers: &plain,
                        body: &body,
                        lang: Lang::Ko,
                        now: jiff::Timestamp::now(),
                    };
                    ready_now(api.answer(&req, &decision))
                },
                BatchSize::SmallInput,
            )
        });
    }

    let metrics = Metrics::new();
    let reply_code = ReplyCode::Ok;
    c.bench_function("metrics/request+response+decided+observed+lateness", |b| {
        b.iter(|| {
            metrics.request(Route::Confirm, &decision.outcome, decision.fault);
            metrics.response(Route::Confirm, reply_code);
            metrics.decided(Route::Confirm, 0.1);
            metrics.observed(Route::Confirm, 0.1002);
            metrics.timer_lateness.observe(0.0002);
        })
    });
    c.bench_function("metrics/request", |b| {
        b.iter(|| metrics.request(Route::Confirm, &decision.outcome, decision.fault))
    });

    // Everything the lifecycle does for a plain confirm between the body read and the timer,
    // except hyper's own work: the CPU Gazua adds over a bare server.
    let api = Api::new(ApiSettings::default());
    c.bench_function("pipeline/confirm_plain", |b| {
        b.iter_batched(
            confirm_body,
            |body| {
                let target = route::route(&Method::POST, black_box(CONFIRM));
                let header = headers::from_headers(&plain).expect("no directives parse");
                let tag = api
                    .request_tag(&target, &body)
                    .transpose()
                    .expect("a plain confirm has no tag");
                let asked = Asked {
                    header: (!header.is_empty()).then_some(&header),
                    tag: tag.as_ref(),
                    rule: None,
                };
                let decision = engine.decide(&happy, target.route, asked, None);
                metrics.request(target.route, &decision.outcome, decision.fault);
                metrics.decided(target.route, decision.latency.as_secs_f64());
                let req = ApiRequest {
                    target: &target,
                    method: &Method::POST,
                    headers: &plain,
                    body: &body,
                    lang: Lang::from_headers(&plain),
                    now: jiff::Timestamp::now(),
                };
                let reply = ready_now(api.answer(&req, &decision));
                let delivered = Delivered::decided(&decision, &reply);
                metrics.delivered(target.route, &delivered);
                metrics.observed(target.route, 0.0);
                metrics.timer_lateness.observe(0.0);
                let header = delivered.header_value();
                (reply, header)
            },
            BatchSize::SmallInput,
        )
    });

    stack(c);
}

/// The request layers of `server/stack.rs` around a handler that answers at once, against the
/// bare handler: what the stack adds per request (the design allows 0.5 µs a layer). Polled by
/// hand with a no-op waker, so no runtime's cost is in the figure.
fn stack(c: &mut Criterion) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use gazua_pay::server::fault::GazuaBody;
    use gazua_pay::server::stack;
    use http::{Request, Response};
    use tower::{Service, service_fn};

    fn call<S, R>(service: &mut S, request: Request<()>) -> R
    where
        S: Service<Request<()>, Response = R>,
        S::Error: std::fmt::Debug,
    {
        let mut cx = Context::from_waker(Waker::noop());
        let mut future = std::pin::pin!(service.call(request));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(answer) => answer.expect("answered"),
            Poll::Pending => unreachable!("the handler answers at once"),
        }
    }
    let handler = || {
        service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(GazuaBody::full(&b"{}"[..])))
        })
    };
    let mut bare = handler();
    c.bench_function("stack/bare_handler", |b| {
        b.iter(|| call(&mut bare, Request::new(())))
    });
    let mut layered = stack::layered(handler(), Metrics::new().panics.clone());
    c.bench_function("stack/catch_panic", |b| {
        b.iter(|| call(&mut layered, Request::new(())))
    });
}

fn config() -> Criterion {
    // Short on purpose: a 2-core box shared with builds; the point is relative cost.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = hot_path;
    config = config();
    targets = benches
}
criterion_main!(hot_path);
