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
        String::from_utf8_lossy(&out.stderr).contains(
            "expected memory, stateless, redis://[user:pass@]host:port[/db] or rediss://"
        )
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

/// Runs `gazua` (a server) until it logged its startup line, then stops it with SIGTERM and
/// returns everything it wrote to stderr (or, under `script`, to the terminal).
fn serve_and_stop(command: Command, read_stdout: bool) -> String {
    serve_and_stop_both(command, read_stdout).0
}

/// [`serve_and_stop`], also returning what the other stream got.
fn serve_and_stop_both(mut command: Command, read_stdout: bool) -> (String, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::CommandExt;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group, so a `script` wrapper and the gazua under it stop together.
        .process_group(0)
        .spawn()
        .unwrap();
    let (out, err): (Box<dyn Read + Send>, Box<dyn Read + Send>) = (
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    );
    let (stream, mut other) = if read_stdout { (out, err) } else { (err, out) };
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).unwrap();
        text.push_str(&line);
        if n == 0 || line.contains("serving") {
            break;
        }
    }
    let pgid = format!("-{}", child.id());
    Command::new("kill")
        .args(["-TERM", "--", &pgid])
        .status()
        .unwrap();
    reader.read_to_string(&mut text).unwrap();
    child.wait().unwrap();
    let mut other_text = String::new();
    other.read_to_string(&mut other_text).unwrap();
    (text, other_text)
}

/// `program args`, with none of the variables these tests set inherited from the caller.
fn clean_command(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    for var in [
        "GAZUA_LISTEN",
        "GAZUA_PROFILE",
        "GAZUA_LOG",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        command.env_remove(var);
    }
    command
}

fn gazua_command(args: &[&str]) -> Command {
    clean_command(env!("CARGO_BIN_EXE_gazua"), args)
}

#[test]
fn a_bad_profile_is_reported_as_a_profile_error_with_a_suggestion() {
    let out = gazua(&["--listen", "127.0.0.1:0", "--profile", "realistc"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--profile: no profile named 'realistc' (did you mean realistic?)"),
        "{err}"
    );
    assert!(!err.contains("listen"), "not a listen error: {err}");
    let out = gazua(&["--listen", "127.0.0.1:0", "--profile", "./nosuch.json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuch.json: cannot read the profile"),
        "{err}"
    );
    assert!(!err.contains("listen"), "{err}");
}

#[test]
fn listen_takes_a_port_alone_a_colon_port_or_a_host_name() {
    for (listen, host) in [
        ("0", "0.0.0.0"),
        (":0", "0.0.0.0"),
        ("localhost:0", "127.0.0.1"),
    ] {
        let log = serve_and_stop(
            gazua_command(&["--listen", listen, "--log-format", "json"]),
            false,
        );
        let line: serde_json::Value =
            serde_json::from_str(log.lines().find(|l| l.contains("serving")).unwrap()).unwrap();
        let addr: std::net::SocketAddr = line["listen"].as_str().unwrap().parse().unwrap();
        assert_eq!(addr.ip().to_string(), host, "--listen {listen}");
        assert_ne!(addr.port(), 0);
    }
    let out = gazua(&["--listen", "80800"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("port 80800 is above 65535; expected HOST:PORT, :PORT or PORT"),
        "{err}"
    );
    let out = gazua(&["--listen", "no.such.host.invalid:8080"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot resolve 'no.such.host.invalid'"),
        "{err}"
    );
}

#[test]
fn profiles_dir_is_global_and_a_misplaced_serve_flag_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.json"),
        r#"{"name": "mine", "description": "a profile of my own"}"#,
    )
    .unwrap();
    let dir = dir.path().to_str().unwrap();
    for args in [
        ["--profiles-dir", dir, "profiles"],
        ["profiles", "--profiles-dir", dir],
    ] {
        let out = gazua(&args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("a profile of my own"));
    }
    let out = gazua(&["--seed", "7", "profiles"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--seed is a serve flag and does nothing for `gazua profiles`")
    );
}

#[test]
fn healthcheck_says_why_it_failed() {
    // Refused: nothing listens on a port just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let out = gazua(&["healthcheck", "--listen", &port]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot connect to {port}")) && err.contains("refused"),
        "{err}"
    );

    // Accepted but never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = gazua(&["healthcheck", "--listen", &addr, "--timeout", "300ms"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no answer to GET /__gazua/health within 300ms"),
        "{err}"
    );

    // Answered, but not 200.
    let unhealthy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = unhealthy.local_addr().unwrap().to_string();
    let answer = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut stream, _) = unhealthy.accept().unwrap();
        let mut head = [0u8; 1024];
        let _ = stream.read(&mut head).unwrap();
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    });
    let out = gazua(&["healthcheck", "--listen", &addr]);
    answer.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("answered 503 Service Unavailable, expected 200 OK"),
        "{err}"
    );
}

#[test]
fn text_logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let esc = "\x1b[";
    let piped = serve_and_stop(gazua_command(&["--listen", "127.0.0.1:0"]), false);
    assert!(
        piped.contains("serving") && !piped.contains(esc),
        "{piped:?}"
    );
    // `script` gives gazua a terminal; what it writes there comes out on script's stdout.
    let under_terminal = |no_color: Option<&str>| {
        let gazua = format!("{} --listen 127.0.0.1:0", env!("CARGO_BIN_EXE_gazua"));
        let mut command = clean_command("script", &["-qec", &gazua, "/dev/null"]);
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        serve_and_stop(command, true)
    };
    let coloured = under_terminal(None);
    assert!(
        coloured.contains("serving") && coloured.contains(esc),
        "{coloured:?}"
    );
    let plain = under_terminal(Some("1"));
    assert!(
        plain.contains("serving") && !plain.contains(esc),
        "{plain:?}"
    );
}

#[test]
fn gazua_log_comes_first_then_rust_log() {
    // `warn` everywhere but the startup line: the later "SIGTERM: draining" (info) is filtered.
    let filter = "warn,gazua_pay::logging=info";
    let mut command = gazua_command(&["--listen", "127.0.0.1:0"]);
    command.env("RUST_LOG", filter);
    let log = serve_and_stop(command, false);
    assert!(
        log.contains("serving") && !log.contains("draining"),
        "RUST_LOG honoured: {log}"
    );

    let mut command = gazua_command(&["--listen", "127.0.0.1:0"]);
    command.env("RUST_LOG", filter).env("GAZUA_LOG", "info");
    let log = serve_and_stop(command, false);
    assert!(log.contains("draining"), "GAZUA_LOG wins: {log}");
    let help = String::from_utf8(gazua(&["--help"]).stdout).unwrap();
    assert!(help.contains("GAZUA_LOG") && help.contains("RUST_LOG") && help.contains("NO_COLOR"));
}

#[test]
fn the_startup_line_says_what_is_served_in_both_formats() {
    let mut command = gazua_command(&[
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--seed",
        "42",
        "--ledger",
        "stateless",
        "--max-latency",
        "30s",
        "--workers",
        "2",
    ]);
    command.env("GAZUA_PROFILE", "happy");
    let log = serve_and_stop(command, false);
    let serving: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["message"] == "serving")
        .collect();
    assert_eq!(serving.len(), 1, "one startup object: {log}");
    let s = &serving[0];
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["listen"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(s["admin"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(s["profile"], "happy");
    assert_eq!(s["profile_from"], "GAZUA_PROFILE");
    assert_eq!(s["profile_origin"], "profiles/happy.json (built in)");
    assert_eq!(s["ledger"], "stateless");
    assert_eq!(s["seed"], 42);
    assert_eq!(s["max_latency"], "30s");
    assert_eq!(s["workers"], 2);

    let (log, stdout) = serve_and_stop_both(
        gazua_command(&["--listen", "127.0.0.1:0", "--profile", "realistic"]),
        false,
    );
    assert_eq!(stdout, "", "logs go to stderr, never stdout");
    let line = log.lines().find(|l| l.contains("serving")).unwrap();
    for field in [
        "version=0.1.0",
        "admin=none",
        "profile=realistic",
        "profile_from=--profile",
        "ledger=memory(capacity=1000000)",
        "seed=1",
        "max_latency=60s",
        "workers=",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}

#[test]
fn completions_load_in_bash() {
    let out = gazua(&["completions", "bash"]);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gazua.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!("source '{}' && complete -p gazua", script.display()),
        ])
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    assert!(String::from_utf8_lossy(&loaded.stdout).contains("gazua"));
    let words = String::from_utf8_lossy(&out.stdout);
    for word in [
        "doctor",
        "healthcheck",
        "--profiles-dir",
        "--max-connections",
    ] {
        assert!(words.contains(word), "{word} completes");
    }
}

#[test]
fn the_man_page_renders_with_man() {
    let out = gazua(&["man"]);
    assert!(out.status.success());
    let page = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gazua.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = Command::new("man")
        .args(["-l", page.to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man is installed (.ci/run installs man-db)");
    assert!(rendered.status.success(), "{rendered:?}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    for word in ["NAME", "gazua", "SYNOPSIS", "--listen", "doctor"] {
        assert!(text.contains(word), "{word} in the rendered page: {text}");
    }
}

#[test]
fn gazuas_own_codes_answer_in_english_even_to_a_korean_client() {
    let server = common::Binary::start(&["--profile", "happy", "--max-body", "64"]);
    let rt = common::runtime();
    let body = "x".repeat(200);
    let reply = rt.block_on(common::send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[
            ("content-type", "application/json"),
            ("accept-language", "ko-KR"),
        ],
        &body,
    ));
    assert_eq!(reply.status, 413);
    let json = reply.json();
    assert_eq!(json["code"], "GAZUA_BODY_TOO_LARGE");
    assert!(json["message"].as_str().unwrap().is_ascii(), "{json}");
    let reply = rt.block_on(common::send(
        server.addr,
        "POST",
        "/v1/payments/confirm",
        &[("x-gazua-latency", "2")],
        common::CONFIRM_BODY,
    ));
    assert_eq!(reply.json()["code"], "GAZUA_INVALID_DIRECTIVE");
    assert!(reply.json()["message"].as_str().unwrap().is_ascii());
}

#[test]
fn doctor_reports_each_problem_with_its_fix() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = gazua(&[
        "doctor",
        "--listen",
        &addr,
        "--max-connections",
        "2000000000",
        "--ledger-capacity",
        "100000000000",
    ]);
    assert_eq!(out.status.code(), Some(1), "problems fail");
    let text = String::from_utf8(out.stdout).unwrap();
    let finding = |check: &str| -> (String, String) {
        let mut lines = text.lines();
        let line = lines
            .find(|l| l.contains(&format!(" {check}: ")))
            .unwrap_or_else(|| panic!("no {check} in {text}"));
        (line.to_owned(), lines.next().unwrap_or("").to_owned())
    };
    let (line, fix) = finding("listen port");
    assert!(line.starts_with("FAIL") && line.contains(&addr), "{line}");
    assert!(fix.contains("fix: stop what listens there"), "{fix}");
    let (line, fix) = finding("open files");
    assert!(
        line.starts_with("FAIL") && line.contains("2000000064"),
        "{line}"
    );
    assert!(
        fix.contains("nofile=2000000064") || fix.contains("ulimit -n"),
        "{fix}"
    );
    let (line, fix) = finding("ledger memory");
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(fix.contains("lower --ledger-capacity"), "{fix}");
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let (line, fix) = finding("listen backlog");
    assert!(
        line.contains(&format!("net.core.somaxconn {}", somaxconn.trim())),
        "{line}"
    );
    assert!(fix.contains("sysctl -w net.core.somaxconn="), "{fix}");

    // Settings this machine can take: exit 0.
    let out = gazua(&[
        "doctor",
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "16",
        "--ledger-capacity",
        "1000",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok    listen port: 127.0.0.1:0 is free"),
        "{text}"
    );
}
