//! The `gazua` binary: parses the command line, builds the runtime, hands over to the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use gazua_pay::cli::{Cli, Command, ServeArgs};
use gazua_pay::config::{Config, LogFormat};
use gazua_pay::directive::preview::preview;
use gazua_pay::profile;
use gazua_pay::server::{Server, ops};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Preview(args)) => {
            print!(
                "{}",
                preview(&args.expr, args.samples, args.seed, args.max_latency)
            );
            ExitCode::SUCCESS
        }
        Some(Command::Check(args)) => {
            let errors = profile::check(&args.files, &args.dirs.profiles_dirs);
            for error in &errors {
                eprintln!("{error}");
            }
            if errors.is_empty() {
                println!("{} profile file(s) ok", args.files.len());
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Command::Profiles(args)) => {
            let options = profile::LoadOptions {
                dirs: args.dirs.profiles_dirs,
                ..Default::default()
            };
            match profile::Profiles::load(&options) {
                Ok(profiles) => {
                    for plan in profiles.plans() {
                        println!("{:<16} {}", plan.name, plan.description);
                    }
                    ExitCode::SUCCESS
                }
                Err(errors) => {
                    for error in &errors {
                        eprintln!("{error}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Healthcheck(args)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let healthy =
                runtime.is_ok_and(|rt| rt.block_on(ops::healthcheck(args.listen, args.timeout)));
            if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = args.into_config();
    init_logging(&config);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        runtime.worker_threads(workers.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gazua: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gazua: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> std::io::Result<()> {
    let listen = config.listen;
    let server = Server::bind(config)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    server.run(shutdown_signal()).await
}

/// SIGTERM (what container runtimes send) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GAZUA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}
