//! Finding the `root-rotate` command lines in the Markdown docs: shell
//! blocks, their `<!-- sh-example: ... -->` markers, and the command lines
//! (split into words by `shellwords`). Whatever cannot be run faithfully is
//! reported as a problem, naming `file:line`.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use crate::shellwords::split_words;

/// Fence languages that a reader would paste into a shell. A ```bash or
/// ```console example needs a marker just like ```sh, so that a new example
/// cannot slip past the test by its fence name. Plain ``` is for output and
/// synopses and is never run.
const SHELL_LANGS: &[&str] = &["sh", "bash", "shell", "console", "zsh"];

const MARKER_PREFIX: &str = "<!-- sh-example:";

/// What the marker says about a block.
#[derive(Debug, Clone, PartialEq)]
pub enum Marker {
    /// Run the commands against a fresh fixture of this kind, expecting this
    /// exit code from each.
    Run { fixture: String, expect: i32 },
    /// Deliberately not run, with the reason shown in the docs source.
    NotRun(String),
}

/// One `root-rotate` command line of a block (continuation lines joined).
#[derive(Debug, Clone)]
pub struct DocCommand {
    pub line: usize,
    /// The command as written (joined, for messages).
    pub text: String,
    /// Words after quote removal and `$VAR` expansion, `sudo` dropped,
    /// starting with `root-rotate`.
    pub words: Vec<String>,
    /// What follows the first unquoted `|`, verbatim.
    pub pipe_tail: Option<String>,
}

#[derive(Debug)]
pub struct Block {
    pub file: String,
    /// 1-based line of the opening fence.
    pub line: usize,
    pub marker: Option<Marker>,
    pub commands: Vec<DocCommand>,
}

/// Every shell block of one Markdown file that has a marker or invokes
/// `root-rotate`, and every problem found on the way (`file:line: what`).
pub fn scan_file(root: &Path, rel: &str, blocks: &mut Vec<Block>, problems: &mut Vec<String>) {
    let text = fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t.starts_with(MARKER_PREFIX) && !is_shell_fence(lines.get(i + 1).copied()) {
            problems.push(format!(
                "{rel}:{}: sh-example marker not directly before a ```sh fence",
                i + 1
            ));
        }
        let Some(lang) = t.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let lang = lang.split_whitespace().next().unwrap_or("").to_owned();
        let start = i;
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            i += 1;
        }
        if SHELL_LANGS.contains(&lang.as_str()) {
            let body = &lines[start + 1..i.min(lines.len())];
            let before = start.checked_sub(1).map(|p| lines[p]);
            scan_block(rel, start + 1, before, body, blocks, problems);
        }
        i += 1;
    }
}

fn is_shell_fence(line: Option<&str>) -> bool {
    line.and_then(|l| l.trim_start().strip_prefix("```"))
        .and_then(|lang| lang.split_whitespace().next())
        .is_some_and(|lang| SHELL_LANGS.contains(&lang))
}

fn scan_block(
    rel: &str,
    fence_line: usize,
    before: Option<&str>,
    body: &[&str],
    blocks: &mut Vec<Block>,
    problems: &mut Vec<String>,
) {
    let at = |line: usize| format!("{rel}:{line}");
    let marker = match before
        .map(str::trim)
        .filter(|b| b.starts_with(MARKER_PREFIX))
    {
        None => None,
        Some(m) => match parse_marker(m) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(format!("{}: {e}", at(fence_line - 1)));
                return;
            }
        },
    };
    let mut vars = HashMap::new();
    let mut commands = Vec::new();
    for (line, text) in logical_lines(body, fence_line + 1) {
        if let Some((name, value)) = assignment(&text) {
            // `DEV=/dev/...` for the lines below. Anything else (`VAR=x cmd`)
            // leaves the variable unset, so a root-rotate line using it is
            // reported rather than run with a guess.
            match split_words(value, &vars) {
                Ok(p) if p.words.len() == 1 && p.pipe_tail.is_none() => {
                    vars.insert(name.to_owned(), p.words[0].clone());
                    continue;
                }
                _ => {
                    vars.remove(name);
                }
            }
        }
        if !invokes_root_rotate(&text) {
            if buries_root_rotate(&text) {
                problems.push(format!(
                    "{}: root-rotate must start the line to be tested: {text:?}",
                    at(line)
                ));
            }
            continue;
        }
        match split_words(&text, &vars) {
            Ok(mut p) => {
                if p.words.first().map(String::as_str) == Some("sudo") {
                    p.words.remove(0);
                }
                commands.push(DocCommand {
                    line,
                    text: text.clone(),
                    words: p.words,
                    pipe_tail: p.pipe_tail,
                });
            }
            // A not-run block may hold what cannot run; that is its point.
            Err(_) if matches!(marker, Some(Marker::NotRun(_))) => {}
            Err(e) => problems.push(format!("{}: {e}: {text:?}", at(line))),
        }
    }
    match (&marker, commands.is_empty()) {
        (None, false) => problems.push(format!(
            "{}: ```sh block runs root-rotate but has no marker on the line before it \
             (e.g. <!-- sh-example: fixture=standard -->, see tests/doc_commands.rs)",
            at(fence_line)
        )),
        (Some(_), true) => problems.push(format!(
            "{}: sh-example marker on a block that runs no root-rotate command",
            at(fence_line - 1)
        )),
        _ => {}
    }
    if marker.is_some() || !commands.is_empty() {
        blocks.push(Block {
            file: rel.to_owned(),
            line: fence_line,
            marker,
            commands,
        });
    }
}

/// `fixture=NAME [expect=N]` or `not-run (reason)`.
pub fn parse_marker(line: &str) -> Result<Marker, String> {
    let inner = line
        .strip_prefix(MARKER_PREFIX)
        .and_then(|r| r.strip_suffix("-->"))
        .ok_or("marker must be one line: <!-- sh-example: ... -->")?
        .trim();
    if let Some(reason) = inner.strip_prefix("not-run") {
        let reason = reason.trim();
        return match reason.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            Some(r) if !r.trim().is_empty() => Ok(Marker::NotRun(r.trim().to_owned())),
            _ => Err("not-run needs a reason: not-run (why)".into()),
        };
    }
    let (mut fixture, mut expect) = (None, 0);
    for word in inner.split_whitespace() {
        match word.split_once('=') {
            Some(("fixture", f)) => fixture = Some(f.to_owned()),
            Some(("expect", n)) => {
                expect = n.parse().map_err(|_| format!("bad expect={n}"))?;
            }
            _ => return Err(format!("unknown marker word {word:?}")),
        }
    }
    let fixture = fixture.ok_or("marker needs fixture=NAME or not-run (reason)")?;
    Ok(Marker::Run { fixture, expect })
}

/// Lines with backslash continuations joined, each with its first line number.
fn logical_lines(body: &[&str], first_line: usize) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (k, raw) in body.iter().enumerate() {
        let (line, mut text) = pending.take().unwrap_or((first_line + k, String::new()));
        match raw.trim_end().strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                text.push(' ');
                pending = Some((line, text));
            }
            None => {
                text.push_str(raw);
                out.push((line, text));
            }
        }
    }
    out.extend(pending);
    out
}

/// `NAME=value` on a line of its own.
fn assignment(text: &str) -> Option<(&str, &str)> {
    let (name, value) = text.trim().split_once('=')?;
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some((name, value))
}

fn strip_sudo(s: &str) -> &str {
    let s = s.trim_start();
    s.strip_prefix("sudo ").map(str::trim_start).unwrap_or(s)
}

fn invokes_root_rotate(text: &str) -> bool {
    let t = strip_sudo(text);
    t == "root-rotate" || t.starts_with("root-rotate ")
}

/// `root-rotate` in command position after `&&`, `;`, `|`, `$(`...: a form
/// this test cannot run faithfully, so it must not pass silently.
fn buries_root_rotate(text: &str) -> bool {
    let code = text.split(" #").next().unwrap_or("");
    let after_env = code
        .split_whitespace()
        .find(|w| assignment(w).is_none())
        .is_some_and(|w| w == "root-rotate");
    after_env
        || code
            .split(['&', ';', '|', '`', '('])
            .skip(1)
            .any(invokes_root_rotate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_root_rotate_where_it_cannot_be_run() {
        assert!(buries_root_rotate("mount /x && root-rotate list"));
        assert!(buries_root_rotate("DEV=/dev/x root-rotate list"));
        assert!(!buries_root_rotate("journalctl -b | grep root-rotate:"));
    }

    #[test]
    fn joins_continuations_and_reads_markers() {
        let l = logical_lines(&["a \\", "  b", "c"], 10);
        assert_eq!(l, [(10, "a    b".to_owned()), (12, "c".to_owned())]);
        assert_eq!(
            parse_marker("<!-- sh-example: fixture=snippet expect=1 -->"),
            Ok(Marker::Run {
                fixture: "snippet".into(),
                expect: 1
            })
        );
        assert!(parse_marker("<!-- sh-example: not-run -->").is_err());
        assert!(parse_marker("<!-- sh-example: fixture=x typo -->").is_err());
    }
}
