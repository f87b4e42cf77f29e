//! Logging: to the journal under systemd, else to `/dev/kmsg` with kernel
//! levels and the prefix `root-rotate:`, and to stderr unless that is the
//! console kmsg already prints to.
//!
//! Where lines go (chosen once, at start):
//! - **journal**: systemd connected stderr to the journal (`JOURNAL_STREAM`
//!   names stderr's device and inode). Lines go to stderr only, each with an
//!   sd-daemon level prefix (`<3>`, `<4>`, `<6>`), so `journalctl -u <unit>`
//!   and `systemctl status` show them with their unit and level. This is the
//!   stage-1 unit and `root-rotate-prune.service`.
//! - **stderr only**: `ROOT_ROTATE_LOG=stderr` (used by tests).
//! - **kmsg**: elsewhere (scripted stage 1, the rescue shell), because kmsg is
//!   where boot logs live before there is a journal. Lines also go to stderr
//!   unless stderr is the console: there the kernel already prints kmsg, and
//!   each line would show twice. So a script's `2>&1 | tee log` or `2>file`
//!   gets every line, and errors always reach the user.
//!
//! The `kernlog` crate writes `<5>` for info and prefixes `target[pid]`; we
//! need `<6>` and a fixed `root-rotate:` prefix that tests and users can grep,
//! so this is a small logger of our own.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stderr {
    /// Not written to.
    Off,
    /// `root-rotate: [error: |warning: ]message`, for people and scripts.
    Plain,
    /// `<N>message`, for journald (sd-daemon(3) prefixes).
    Journal,
}

struct Logger {
    kmsg: Option<Mutex<File>>,
    stderr: Stderr,
}

fn level_number(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = level_number(record.level());
        if let Some(kmsg) = &self.kmsg {
            // One write() per line: kmsg takes each write as one record.
            let line = format!("<{level}>root-rotate: {}\n", record.args());
            if let Ok(mut f) = kmsg.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        let line = match self.stderr {
            Stderr::Off => return,
            Stderr::Journal => format!("<{level}>{}\n", record.args()),
            Stderr::Plain => {
                let tag = match record.level() {
                    Level::Error => "error: ",
                    Level::Warn => "warning: ",
                    _ => "",
                };
                format!("root-rotate: {tag}{}\n", record.args())
            }
        };
        // One write per line, so lines from concurrent runs do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// `JOURNAL_STREAM=<dev>:<ino>` names stderr when systemd connected it to the
/// journal (systemd.exec(5)); a child that inherited the variable but not the
/// stream must not use the journal format.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}

/// Whether stderr is a terminal the kernel prints kmsg on: `/dev/console`
/// (5:1) or a device named in /sys/class/tty/console/active (`ttyS0`, or
/// `tty0`, the foreground virtual terminal).
fn stderr_is_console() -> bool {
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    if !meta.file_type().is_char_device() {
        return false;
    }
    let rdev = meta.rdev();
    if rdev == rustix::fs::makedev(5, 1) {
        return true;
    }
    let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
    active.split_whitespace().any(|name| {
        if name == "tty0" {
            // Virtual terminals are 4:1 to 4:63.
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            return major == 4 && (1..64).contains(&minor);
        }
        std::fs::metadata(format!("/dev/{name}")).is_ok_and(|m| m.rdev() == rdev)
    })
}

pub fn init() {
    let only_stderr = std::env::var_os("ROOT_ROTATE_LOG").is_some_and(|v| v == "stderr");
    let (kmsg, stderr) = if only_stderr {
        (None, Stderr::Plain)
    } else if stderr_is_journal() {
        (None, Stderr::Journal)
    } else {
        let kmsg = OpenOptions::new().write(true).open("/dev/kmsg").ok();
        let stderr = if kmsg.is_some() && stderr_is_console() {
            Stderr::Off
        } else {
            Stderr::Plain
        };
        (kmsg.map(Mutex::new), stderr)
    };
    let logger = Box::new(Logger { kmsg, stderr });
    if log::set_boxed_logger(logger).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}

/// Collects items into as few kmsg lines as possible: kmsg keeps only ten
/// lines per five seconds from one writer (the rest are dropped, and with
/// them the summary line), and one record holds about 1 KiB. After
/// `MAX_LINES` lines, items are only counted, and the last line says how many
/// were not listed.
pub struct Batch {
    level: log::Level,
    head: String,
    line: String,
    items_in_line: usize,
    lines_written: usize,
    unlisted: usize,
}

impl Batch {
    const MAX_LINE: usize = 900;
    const MAX_LINES: usize = 3;

    pub fn new(level: log::Level, head: String) -> Self {
        Batch {
            level,
            line: head.clone(),
            head,
            items_in_line: 0,
            lines_written: 0,
            unlisted: 0,
        }
    }

    pub fn add(&mut self, item: String) {
        if self.line.len() + item.len() + 1 > Self::MAX_LINE {
            if self.lines_written + 1 >= Self::MAX_LINES {
                self.unlisted += 1;
                return;
            }
            self.emit();
        }
        self.line.push(' ');
        self.line.push_str(&item);
        self.items_in_line += 1;
    }

    /// Writes what is pending; call once at the end.
    pub fn flush(&mut self) {
        if self.unlisted > 0 {
            self.line
                .push_str(&format!(" (and {} more, not listed)", self.unlisted));
            self.unlisted = 0;
        }
        if self.items_in_line > 0 {
            self.emit();
        }
    }

    fn emit(&mut self) {
        log::log!(self.level, "{}", self.line);
        self.line.clone_from(&self.head);
        self.items_in_line = 0;
        self.lines_written += 1;
    }
}
