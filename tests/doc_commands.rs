//! Every `root-rotate` command line in README.md and docs/**/*.md is run.
//!
//! A shell block (```sh, or ```bash and the like) that invokes `root-rotate`
//! must have, on the line right before its opening fence, a marker saying
//! what the reader's disk looks like:
//!
//!   <!-- sh-example: fixture=standard -->            the server layout
//!   <!-- sh-example: fixture=snippet -->             migrated from the snippet
//!   <!-- sh-example: fixture=live-root -->           a running root, for `diff`
//!   <!-- sh-example: fixture=standard expect=1 -->   each command exits 1
//!   <!-- sh-example: not-run (reason) -->            only in NOT_RUN_ALLOWED
//!
//! Each marked block gets a fresh fixture (tests/doc_commands/fixtures.rs);
//! its `root-rotate` lines run in order on it, as the reader would run them,
//! with the doc's device, mount point and `diff` path mapped onto the
//! fixture (tests/doc_commands/run.rs). Other lines of a block (`mount`,
//! `cp`, `reboot`) are not run. Output and synopsis blocks are plain ```
//! fences and are not looked at.

mod common;
#[path = "doc_commands/extract.rs"]
mod extract;
#[path = "doc_commands/fixtures.rs"]
mod fixtures;
#[path = "doc_commands/run.rs"]
mod run;
#[path = "doc_commands/shellwords.rs"]
mod shellwords;

use std::collections::BTreeMap;
use std::path::Path;

use extract::{Block, DocCommand, Marker};
use fixtures::DocFixture;

/// Pages allowed a `not-run` block. Empty: every example can run on a
/// fixture. Adding one here is a deliberate, reviewed exception.
const NOT_RUN_ALLOWED: &[&str] = &[];

/// Pages known to show `root-rotate` commands. If the extraction ever finds
/// none on one of them, the parser broke (or the page changed): either way
/// the test must not pass by running nothing.
const PAGES_WITH_COMMANDS: &[&str] = &[
    "docs/getting-started.md",
    "docs/how-to/day-2.md",
    "docs/how-to/find-what-you-would-lose.md",
    "docs/how-to/migrate-from-snippet.md",
    "docs/how-to/persist-a-path.md",
    "docs/how-to/rollback.md",
    "docs/how-to/uninstall.md",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/**/*.md, relative to the repository, sorted.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p.strip_prefix(repo()).unwrap().to_string_lossy().into());
            }
        }
    }
    let mut out = vec!["README.md".to_owned()];
    walk(&repo().join("docs"), &mut out);
    out.sort();
    out
}

/// The blocks to run, and every reason the docs are not testable as they are.
fn collect() -> (Vec<Block>, Vec<String>) {
    let (mut blocks, mut problems) = (Vec::new(), Vec::new());
    for page in pages() {
        extract::scan_file(repo(), &page, &mut blocks, &mut problems);
    }
    for b in &blocks {
        match &b.marker {
            Some(Marker::Run { fixture, .. }) if !fixtures::KINDS.contains(&fixture.as_str()) => {
                problems.push(format!(
                    "{}:{}: unknown fixture={fixture} (known: {:?})",
                    b.file,
                    b.line - 1,
                    fixtures::KINDS
                ))
            }
            Some(Marker::NotRun(_)) if !NOT_RUN_ALLOWED.contains(&b.file.as_str()) => problems
                .push(format!(
                    "{}:{}: not-run block on a page not in NOT_RUN_ALLOWED (tests/doc_commands.rs)",
                    b.file,
                    b.line - 1
                )),
            _ => {}
        }
    }
    for page in PAGES_WITH_COMMANDS {
        if !blocks
            .iter()
            .any(|b| b.file == *page && !b.commands.is_empty())
        {
            problems.push(format!("{page}: no root-rotate command found any more"));
        }
    }
    (blocks, problems)
}

fn assert_no_problems(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "the docs' shell examples are not all testable:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_root_rotate_example_is_marked() {
    let (_, problems) = collect();
    assert_no_problems(&problems);
}

#[test]
fn every_documented_command_runs() {
    if !common::is_root() {
        common::skip_not_root("every_documented_command_runs");
        return;
    }
    let (blocks, problems) = collect();
    assert_no_problems(&problems);
    let mut failures = Vec::new();
    let mut ran: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &blocks {
        let Some(Marker::Run { fixture, expect }) = &b.marker else {
            continue;
        };
        *ran.entry(b.file.as_str()).or_default() += run_block(b, fixture, *expect, &mut failures);
    }
    eprintln!("doc commands run per page: {ran:#?}");
    assert!(
        failures.is_empty(),
        "{} documented command(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs a block's commands in order on one fresh fixture; stops at the
/// first failure, since later lines build on the earlier ones. Returns how
/// many commands passed.
fn run_block(b: &Block, fixture: &str, expect: i32, failures: &mut Vec<String>) -> usize {
    let name = format!("doc-{}-{}", b.file.replace('/', "-"), b.line);
    let named: Vec<String> = b
        .commands
        .iter()
        .flat_map(|c| {
            c.words
                .windows(2)
                .filter(|w| w[0] == "--to")
                .map(|w| w[1].clone())
        })
        .collect();
    let df = fixtures::build(fixture, &name, &named).expect("root was checked before");
    for (k, cmd) in b.commands.iter().enumerate() {
        if let Err(e) = run_command(b, cmd, expect, &df) {
            let skipped = b.commands.len() - k - 1;
            let note = match skipped {
                0 => String::new(),
                n => format!("\n  ({n} later command(s) of this block not run)"),
            };
            failures.push(format!(
                "{}:{}: {e}\n  doc: {}{note}",
                b.file,
                cmd.line,
                cmd.text.trim()
            ));
            return k;
        }
    }
    b.commands.len()
}

/// One documented line, mapped onto the fixture, run and checked; the error
/// shows what ran and what it printed.
fn run_command(b: &Block, cmd: &DocCommand, expect: i32, df: &DocFixture) -> Result<(), String> {
    let argv = run::argv(cmd, df)?;
    let script = run::script(&argv, cmd.pipe_tail.as_deref(), df);
    let missing = cmd.pipe_tail.as_deref().map(run::missing_tools);
    if let Some(tools) = missing.filter(|m| !m.is_empty()) {
        return Err(format!(
            "the pipeline needs {tools:?}, not installed: run scripts/setup"
        ));
    }
    let r = run::run(&script, df).map_err(|e| format!("{e}\n  ran: {script}"))?;
    // For doc authors: what each example prints on its fixture.
    if std::env::var_os("DOC_COMMANDS_VERBOSE").is_some() {
        eprintln!(
            "{}:{}: {script}\n{}{}",
            b.file, cmd.line, r.stdout, r.stderr
        );
    }
    let indent = |s: &str| s.trim_end().replace('\n', "\n          ");
    run::check(cmd, expect, df, &r).map_err(|e| {
        format!(
            "{e}\n  ran: {script}\n  exit {}\n  stdout: {}\n  stderr: {}",
            r.code,
            indent(&r.stdout),
            indent(&r.stderr)
        )
    })
}
