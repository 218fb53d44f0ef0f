//! The `gazua` binary: parses the command line, builds the runtime, hands over to the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use gazua_pay::cli::{self, Cli, Command, ProfileFrom, ServeArgs};
use gazua_pay::config::Config;
use gazua_pay::directive::preview::preview;
use gazua_pay::server::{Server, ops};
use gazua_pay::{doctor, logging, profile};
use tokio::signal::unix::{Signal, SignalKind, signal};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let dirs = cli.dirs.profiles_dirs;
    match cli.command {
        None => serve(cli.serve, dirs),
        Some(Command::Serve(args)) => serve(*args, dirs),
        Some(Command::Preview(args)) => {
            print!(
                "{}",
                preview(&args.expr, args.samples, args.seed, args.max_latency)
            );
            ExitCode::SUCCESS
        }
        Some(Command::Check(args)) => {
            let errors = profile::check(&args.files, &dirs);
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
        Some(Command::Profiles) => {
            let options = profile::LoadOptions {
                dirs,
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
            let verdict = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(ops::healthcheck(args.listen, args.timeout)),
                Err(error) => Err(format!("cannot start the runtime: {error}")),
            };
            match verdict {
                Ok(()) => ExitCode::SUCCESS,
                Err(why) => {
                    eprintln!("gazua healthcheck: {why}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Doctor(args)) => {
            let report = doctor::examine(&args.into_config(dirs));
            print!("{report}");
            if report.fails() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(Command::Completions(args)) => {
            cli::write_completions(args.shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(Command::Man) => match cli::write_man_page(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("gazua: cannot write the man page: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(args: ServeArgs, dirs: Vec<std::path::PathBuf>) -> ExitCode {
    let profile_from = args.profile_from;
    let config = args.into_config(dirs);
    logging::init(config.log_format);
    // The profiles are loaded once here before anything binds, so that a bad `--profile` is
    // reported as what it is (and with a suggestion), not as a failure to listen.
    if let Err(errors) = profile::Profiles::load(&config.load_options()) {
        for error in &errors {
            eprintln!("gazua: {error}");
        }
        return ExitCode::FAILURE;
    }
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
    match runtime.block_on(run(config, profile_from)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gazua: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, profile_from: ProfileFrom) -> std::io::Result<()> {
    // Installed before the startup line is logged: a SIGTERM sent as soon as it appears is a
    // drain, not the default action (death).
    let term = signal(SignalKind::terminate())?;
    let int = signal(SignalKind::interrupt())?;
    let listen = config.listen;
    let admin = config
        .admin_listen
        .map_or(String::new(), |a| format!(" or {a}"));
    let server = Server::bind(config).await.map_err(|e| match e.kind() {
        // A setting refused (a certificate pair, a profile) names itself; only a socket error
        // is about the listen address.
        std::io::ErrorKind::InvalidInput => e,
        _ => std::io::Error::new(e.kind(), format!("cannot listen on {listen}{admin}: {e}")),
    })?;
    logging::startup(&server, profile_from.as_str());
    server.run(shutdown_signal(term, int)).await
}

/// SIGTERM (what container runtimes send) or SIGINT (Ctrl-C).
async fn shutdown_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: draining"),
        _ = int.recv() => tracing::info!("SIGINT: draining"),
    }
}
