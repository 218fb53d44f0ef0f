//! Docs that are tested: every shell example of README.md and docs/*.md marked runnable runs
//! against a live `gazua` (the real binary on a free port) and must give what its marker says.
//!
//! The marker is an HTML comment (invisible on GitHub) right before the example's fence:
//!
//! ```text
//! <!-- runnable: status=403 code=REJECT_CARD_PAYMENT outcome=declined -->
//! <!-- runnable(--ledger stateless): status=200 -->   (its own server, started with these flags)
//! ```
//!
//! The block runs under `set -e` (a failing command ends it with that exit code). Checks, on
//! its last command: `status=` (HTTP status), `code=` (the JSON body's
//! `code`), `outcome=` (the `outcome` of `X-Gazua-Decision`; `declined` also holds for
//! `declined(CODE)`), `exit=` (the command's exit code,
//! e.g. curl's 28 for its own timeout); with none, `exit=0`. In a block with `$ ` prompts only
//! the prompted lines run (the rest is shown output). `localhost:8080` becomes the live port,
//! and `gazua` is the binary under test. The examples of one file share one server, in order,
//! as a reader running them one after another would.

mod common;

use std::path::Path;
use std::process::Command;

/// One marked example.
#[derive(Debug)]
struct Example {
    line: usize,
    /// Flags of a server of its own, from `runnable(FLAGS)`; `None` shares the file's server.
    serve: Option<Vec<String>>,
    script: String,
    expect: Vec<(String, String)>,
}

/// Every marked example of a Markdown text; a marker not followed by a fenced block, or with a
/// check it does not know, is an error (a typo must not turn a check off).
fn examples(text: &str) -> Result<Vec<Example>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(marker) = lines[i]
            .trim()
            .strip_prefix("<!-- runnable")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let (serve, checks) = match marker.strip_prefix('(') {
            Some(rest) => {
                let (flags, checks) = rest
                    .split_once("):")
                    .ok_or(format!("line {line}: expected runnable(FLAGS): CHECKS"))?;
                (
                    Some(flags.split_whitespace().map(str::to_owned).collect()),
                    checks,
                )
            }
            None => (
                None,
                marker
                    .strip_prefix(':')
                    .ok_or(format!("line {line}: expected 'runnable:'"))?,
            ),
        };
        let mut expect = Vec::new();
        for check in checks.split_whitespace() {
            let (key, value) = check
                .split_once('=')
                .ok_or(format!("line {line}: '{check}': expected KEY=VALUE"))?;
            if !["status", "code", "outcome", "exit"].contains(&key) {
                return Err(format!(
                    "line {line}: unknown check '{key}'; expected status, code, outcome or exit"
                ));
            }
            expect.push((key.to_owned(), value.to_owned()));
        }
        if expect.is_empty() {
            expect.push(("exit".to_owned(), "0".to_owned()));
        }
        i += 1;
        if !lines
            .get(i)
            .is_some_and(|l| l.trim_start().starts_with("```"))
        {
            return Err(format!(
                "line {line}: a runnable marker must be followed by a ``` block"
            ));
        }
        i += 1;
        let mut block = Vec::new();
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            block.push(lines[i]);
            i += 1;
        }
        found.push(Example {
            line,
            serve,
            script: commands(&block),
            expect,
        });
        i += 1;
    }
    Ok(found)
}

/// The commands of a block: the `$ `-prompted lines when there are any (with their `\`
/// continuations), else every line.
fn commands(block: &[&str]) -> String {
    if !block.iter().any(|l| l.starts_with("$ ")) {
        return block.join("\n");
    }
    let mut script = Vec::new();
    let mut continued = false;
    for line in block {
        if let Some(command) = line.strip_prefix("$ ") {
            script.push(command.to_owned());
        } else if continued {
            script.push((*line).to_owned());
        } else {
            continue;
        }
        continued = line.trim_end().ends_with('\\');
    }
    script.join("\n")
}

/// What the block's last command gave.
#[derive(Debug, Default)]
struct Outcome {
    exit: Option<i32>,
    status: String,
    headers: String,
    body: String,
}

fn run(example: &Example, port: u16, scratch: &Path) -> Outcome {
    let script = example
        .script
        .replace("localhost:8080", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    let (h, b, s) = (
        scratch.join("headers"),
        scratch.join("body"),
        scratch.join("status"),
    );
    for f in [&h, &b, &s] {
        let _ = std::fs::remove_file(f);
    }
    // curl keeps every flag the example gives; the wrapper only records what came back.
    let prelude = format!(
        "set -e\ncurl() {{ command curl -sS -D '{h}' -o '{b}' -w '%{{http_code}}' \"$@\" > '{s}'; }}\n\
         gazua() {{ command '{bin}' \"$@\"; }}\n",
        h = h.display(),
        b = b.display(),
        s = s.display(),
        bin = env!("CARGO_BIN_EXE_gazua"),
    );
    let output = Command::new("timeout")
        .args(["60", "bash", "-c", &format!("{prelude}{script}")])
        .env_remove("GAZUA_LISTEN")
        .output()
        .expect("bash and timeout are installed");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let mut body = read(&b);
    // With `-i` the head is in the body file too.
    if body.starts_with("HTTP/") {
        body = body
            .split_once("\r\n\r\n")
            .map_or(String::new(), |(_, rest)| rest.to_owned());
    }
    Outcome {
        exit: output.status.code(),
        status: read(&s),
        headers: read(&h),
        body,
    }
}

/// Every check the outcome fails, said as `expected X, got Y`.
fn verify(example: &Example, got: &Outcome) -> Vec<String> {
    let decided = |field: &str| -> String {
        got.headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-gazua-decision")
                    .then(|| value.trim().to_owned())
            })
            .and_then(|d| {
                d.split("; ")
                    .find_map(|kv| kv.strip_prefix(field)?.strip_prefix('=').map(str::to_owned))
            })
            .unwrap_or_default()
    };
    let code = || {
        serde_json::from_str::<serde_json::Value>(&got.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    example
        .expect
        .iter()
        .filter_map(|(key, want)| {
            let have = match key.as_str() {
                "status" => got.status.clone(),
                "exit" => got.exit.map_or("signal".to_owned(), |c| c.to_string()),
                "code" => code(),
                "outcome" => decided("outcome"),
                _ => unreachable!("checked when parsed"),
            };
            // `outcome=declined` holds for `declined(REJECT_CARD_PAYMENT)` too.
            let holds = have == *want
                || (key == "outcome"
                    && have
                        .strip_prefix(want.as_str())
                        .is_some_and(|r| r.starts_with('(')));
            (!holds).then(|| format!("expected {key}={want}, got {key}={have:?}"))
        })
        .collect()
}

/// Runs every marked example of one document; returns each failure as `file:line: why`.
fn check_document(name: &str, text: &str) -> Vec<String> {
    let examples = match examples(text) {
        Ok(examples) => examples,
        Err(error) => return vec![format!("{name}: {error}")],
    };
    let scratch = tempfile::tempdir().unwrap();
    let mut shared: Option<common::Binary> = None;
    let mut failures = Vec::new();
    for example in &examples {
        let own;
        let server = match &example.serve {
            Some(flags) => {
                let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
                own = common::Binary::start(&flags);
                &own
            }
            None => shared.get_or_insert_with(|| common::Binary::start(&[])),
        };
        let got = run(example, server.addr.port(), scratch.path());
        for why in verify(example, &got) {
            failures.push(format!(
                "{name}:{}: {why}\n    script: {}\n    body: {}",
                example.line,
                example.script.replace('\n', "\n            "),
                got.body.chars().take(300).collect::<String>()
            ));
        }
    }
    failures
}

fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs.into_iter()
        .map(|p| {
            let name = p.strip_prefix(root).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_runnable_example_of_the_docs_gives_what_the_text_says() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, text) in documents() {
        count += examples(&text).map_or(0, |e| e.len());
        failures.extend(check_document(&name, &text));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The marker is what turns a check on: losing them all must not pass quietly.
    assert!(count >= 10, "only {count} runnable examples found");
}

#[test]
fn a_wrong_example_fails_naming_what_it_expected_and_got() {
    let doc = "\
A decline:

<!-- runnable: status=200 outcome=approved -->
```sh
curl -XPOST localhost:8080/v1/payments/confirm -H 'x-gazua-outcome: declined' \\
  -H 'content-type: application/json' \\
  -d '{\"paymentKey\":\"pk_wrong_1\",\"orderId\":\"order-wrong-1\",\"amount\":15000}'
```
";
    let failures = check_document("wrong.md", doc);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].starts_with("wrong.md:3: expected status=200, got status=\"403\""));
    assert!(
        failures[1]
            .contains("expected outcome=approved, got outcome=\"declined(REJECT_CARD_PAYMENT)\"")
    );
}

#[test]
fn a_marker_with_an_unknown_check_or_no_block_is_refused() {
    let typo = "<!-- runnable: stauts=200 -->\n```sh\ntrue\n```\n";
    assert!(
        examples(typo)
            .unwrap_err()
            .contains("unknown check 'stauts'")
    );
    let orphan = "<!-- runnable: status=200 -->\ntext\n";
    assert!(
        examples(orphan)
            .unwrap_err()
            .contains("followed by a ``` block")
    );
}

#[test]
fn prompted_blocks_run_only_their_commands() {
    let block = [
        "$ curl -s localhost:8080/x \\",
        "    -d '{}'",
        "HTTP/1.1 200 OK",
        "{\"a\":1}",
    ];
    assert_eq!(commands(&block), "curl -s localhost:8080/x \\\n    -d '{}'");
}

/// examples/README.md says the k6 script's `gazua_outcomes` counter is tagged by outcome.
#[test]
fn the_k6_counter_is_tagged_by_outcome() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("examples/k6/gazua-pay.js")).unwrap();
    assert!(script.contains("new Counter('gazua_outcomes')"));
    assert!(script.contains("outcomes.add(1, { outcome })"));
}

/// The example load scripts read their settings from the environment; a name the server also
/// reads (`GAZUA_LATENCY`) would set the server's default too when both run in one shell.
#[test]
fn example_scripts_read_no_variable_the_server_reads() {
    use clap::CommandFactory;
    let mut server_vars = Vec::new();
    let command = gazua_pay::cli::Cli::command();
    let mut commands = vec![&command];
    commands.extend(command.get_subcommands());
    for c in commands {
        for arg in c.get_arguments() {
            if let Some(env) = arg.get_env() {
                server_vars.push(env.to_string_lossy().into_owned());
            }
        }
    }
    assert!(server_vars.iter().any(|v| v == "GAZUA_LATENCY"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stack = vec![root.join("examples"), root.join("ci/locust-test.sh")];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for var in &server_vars {
            // As a whole word: GAZUA_LATENCY, not LOAD_LATENCY or GAZUA_LATENCY_X.
            let clash = text.match_indices(var.as_str()).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + var.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            assert!(!clash, "{} uses the server's {var}", path.display());
        }
    }
}

/// The docs stand on their own: they cite files of this repository or public pages, never the
/// product specification or reference notes that live outside it.
#[test]
fn the_docs_cite_nothing_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("README.md"),
        root.join("BENCHMARKS.md"),
        root.join("benches/results/history/2026-11-22.md"),
        root.join("benches/results/history/2026-12-01-shared-machine.md"),
        root.join("examples/README.md"),
        root.join("deploy/elastic-beanstalk/README.md"),
    ];
    files.extend(documents().iter().map(|(name, _)| root.join(name)));
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for outside in [
            "SPEC §",
            "reference/pg-api-shapes",
            "shared/reference",
            "../shared",
        ] {
            assert!(
                !text.contains(outside),
                "{} cites {outside}, which is not in the repository",
                file.display()
            );
        }
    }
}
