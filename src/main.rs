//! root-rotate: archive and wipe the Btrfs root subvolume at every boot.
//! Thin: parse arguments, set up logging, run, map errors to exit codes
//! (0 success, 1 runtime failure, 2 usage error; see docs/reference/cli.md).

mod archive;
mod btrfs;
mod cli;
mod diff;
mod error;
mod fault;
mod inventory;
mod json;
mod kmsg;
mod list;
mod marker;
mod mountinfo;
mod policy;
mod prune;
mod rollback;
mod rotate;
mod stamp;
mod status;

use std::process::ExitCode;
use std::time::Instant;

use cli::{Command, Target};
use error::{Error, Result};

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match cli::utf8_args(std::env::args_os()) {
        Ok(args) => args,
        Err(usage) => {
            eprintln!("root-rotate: {usage}");
            return ExitCode::from(2);
        }
    };
    let cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(Ok(help)) => {
            println!("{help}");
            return ExitCode::SUCCESS;
        }
        Err(Err(usage)) => {
            // argh spreads some messages over lines; the contract is one line.
            let line: Vec<&str> = usage.split_whitespace().collect();
            eprintln!("root-rotate: {}", line.join(" "));
            return ExitCode::from(2);
        }
    };
    if cli.version {
        println!("root-rotate {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    kmsg::init();
    match run(cli, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                Error::Usage(m) => eprintln!("root-rotate: {m}"),
                Error::Runtime(m) => log::error!("{m}"),
            }
            e.exit_code()
        }
    }
}

fn run(cli: cli::Cli, started: Instant) -> Result<()> {
    let Some(command) = cli.command else {
        return Err(Error::Usage(
            "a command is required: rotate, prune, list, rollback or diff (see --help)".into(),
        ));
    };
    match command {
        Command::Rotate(a) => rotate::rotate(
            &rotate::Options {
                target: Target::new(a.device, a.mount_point, a.root, a.archive)?,
                retention: cli::retention(a.keep_days, a.keep_at_least),
                budget: cli::budget(a.budget_ms),
                dry_run: a.dry_run,
                status_file: cli::status_file(&a.status_file)?,
            },
            started,
        ),
        Command::Prune(a) => rotate::prune(
            &rotate::Options {
                // `prune` never touches the root; the name only has to be valid.
                target: Target::new(a.device, a.mount_point, "@root".into(), a.archive)?,
                retention: cli::retention(a.keep_days, a.keep_at_least),
                budget: cli::budget(a.budget_ms),
                dry_run: a.dry_run,
                status_file: None,
            },
            started,
        ),
        Command::List(a) => list::list(
            &Target::new(a.device, a.mount_point, "@root".into(), a.archive)?,
            cli::retention(a.keep_days, a.keep_at_least),
            a.json,
        ),
        Command::Rollback(a) => {
            let choice = match (a.to, a.latest) {
                (Some(name), false) => {
                    stamp::check_component("--to", &name).map_err(Error::Usage)?;
                    rollback::Choice::Named(name)
                }
                (None, true) => rollback::Choice::Latest,
                _ => {
                    return Err(Error::Usage(
                        "rollback needs exactly one of --to ARCHIVE or --latest".into(),
                    ))
                }
            };
            let target = Target::new(a.device, a.mount_point, a.root, a.archive)?;
            rollback::rollback(&target, &choice, a.dry_run, started)
        }
        Command::Diff(a) => diff::diff(&a.path, a.json),
    }
}
