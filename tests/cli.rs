//! The command line of the real binary: preview, healthcheck, profiles, and flag errors.

mod common;

use std::process::{Command, Output};

fn gazua(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gazua"))
        .args(args)
        .env_remove("GAZUA_LISTEN")
        .output()
        .unwrap()
}

#[test]
fn preview_prints_the_percentiles_of_an_expression() {
    let out = gazua(&[
        "preview",
        "percentiles(p50=80ms, p90=200ms, p99=900ms, max=3s)",
        "--samples",
        "50000",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let value = |label: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} in {text}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // The empirical form reproduces its points.
    assert!((value("p50") / 80.0 - 1.0).abs() < 0.03, "{text}");
    assert!((value("p90") / 200.0 - 1.0).abs() < 0.03, "{text}");
    assert!(value("max") <= 3000.0, "{text}");
    assert!(text.contains('#'), "a histogram: {text}");
}

#[test]
fn a_bad_expression_or_flag_is_refused_with_what_was_expected() {
    let out = gazua(&["preview", "lognormal(p50=80, p99=900ms)"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a duration such as 120ms"));
    let out = gazua(&["--ledger", "mysql://127.0.0.1:3306"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("expected memory, stateless or redis://[user:pass@]host:port[/db]")
    );
    let out = gazua(&["--outcome", "97% approved, 5% declined"]);
    assert!(!out.status.success(), "weights over 100% are refused");
}

#[test]
fn healthcheck_says_whether_the_server_answers() {
    let server = common::Binary::start(&["--profile", "happy"]);
    let listen = server.addr.to_string();
    assert!(
        gazua(&["healthcheck", "--listen", &listen])
            .status
            .success()
    );
    drop(server);
    let out = gazua(&["healthcheck", "--listen", &listen, "--timeout", "500ms"]);
    assert_eq!(out.status.code(), Some(1), "nothing listens any more");
}

#[test]
fn profiles_lists_the_shipped_profiles() {
    let out = gazua(&["profiles"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "default",
        "happy",
        "realistic",
        "degraded",
        "peak-sale",
        "outage-drill",
        "saturation",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from {text}"
        );
    }
}
