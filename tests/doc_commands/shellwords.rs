//! A small shell-word splitter for documented command lines: only what a
//! copy-pasted example needs (quotes, backslashes, `$VAR` set earlier in the
//! block, a trailing ` # comment`, one pipeline). Anything else is an error
//! rather than a guess, so the test never runs something other than what
//! the reader would.

use std::collections::HashMap;

#[derive(Debug, PartialEq)]
pub struct Words {
    pub words: Vec<String>,
    pub pipe_tail: Option<String>,
}

/// Splits one command line like a POSIX shell would, for the subset above.
pub fn split_words(line: &str, vars: &HashMap<String, String>) -> Result<Words, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '|' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                }
                let tail = line[i + 1..].trim();
                if tail.is_empty() || tail.starts_with('|') {
                    return Err("only a plain `| tool ...` pipeline is supported".into());
                }
                return Ok(Words {
                    words,
                    pipe_tail: Some(tail.to_owned()),
                });
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, c)) => cur.push(c),
                        None => return Err("unterminated '".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, c @ ('"' | '\\' | '$' | '`'))) => cur.push(c),
                            Some((_, c)) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated \"".into()),
                        },
                        Some((_, '$')) => cur.push_str(&expand(&mut chars, vars)?),
                        Some((_, '`')) => return Err("command substitution".into()),
                        Some((_, c)) => cur.push(c),
                        None => return Err("unterminated \"".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next().map(|(_, c)| c));
            }
            '$' => {
                in_word = true;
                cur.push_str(&expand(&mut chars, vars)?);
            }
            ';' | '&' | '<' | '>' | '(' | ')' | '`' | '*' | '?' | '[' => {
                return Err(format!(
                    "unsupported shell syntax {c:?} (a placeholder like <stamp>, a glob, \
                     a redirection or a second command) on a root-rotate line"
                ));
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(Words {
        words,
        pipe_tail: None,
    })
}

/// `$NAME` or `${NAME}`, after the `$`; only variables the block set.
fn expand(
    chars: &mut std::iter::Peekable<std::str::CharIndices>,
    vars: &HashMap<String, String>,
) -> Result<String, String> {
    let braced = chars.next_if(|&(_, c)| c == '{').is_some();
    let mut name = String::new();
    while let Some((_, c)) = chars.next_if(|&(_, c)| c.is_ascii_alphanumeric() || c == '_') {
        name.push(c);
    }
    if braced && chars.next_if(|&(_, c)| c == '}').is_none() {
        return Err("unsupported ${...} form".into());
    }
    if name.is_empty() {
        return Err("unsupported $ form".into());
    }
    vars.get(&name)
        .cloned()
        .ok_or_else(|| format!("${name} is not set earlier in the block"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Words {
        let vars = HashMap::from([("DEV".to_owned(), "/dev/x".to_owned())]);
        split_words(line, &vars).unwrap()
    }

    #[test]
    fn splits_quotes_variables_comments_and_pipes() {
        let w = words(r#"sudo root-rotate list --device "$DEV" --to 'a b'   # comment"#);
        assert_eq!(
            w.words,
            [
                "sudo",
                "root-rotate",
                "list",
                "--device",
                "/dev/x",
                "--to",
                "a b"
            ]
        );
        let w = words("root-rotate diff --json | jq -r '.[] | .path'");
        assert_eq!(w.words, ["root-rotate", "diff", "--json"]);
        assert_eq!(w.pipe_tail.as_deref(), Some("jq -r '.[] | .path'"));
        assert_eq!(words("root-rotate list --device ${DEV}").words[3], "/dev/x");
        assert_eq!(words("root-rotate a#b").words[1], "a#b");
    }

    #[test]
    fn refuses_what_it_cannot_run_faithfully() {
        let vars = HashMap::new();
        for bad in [
            "root-rotate list --device $UNSET",
            "root-rotate rollback --to <stamp>",
            "root-rotate list > out",
            "root-rotate list; reboot",
            "root-rotate list || true",
        ] {
            assert!(split_words(bad, &vars).is_err(), "{bad}");
        }
    }
}
