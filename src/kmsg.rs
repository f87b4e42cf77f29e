//! Logging to `/dev/kmsg` with kernel levels and the prefix `root-rotate:`.
//!
//! In the initrd there is no journal yet (scripted stage 1) or it forwards to
//! kmsg anyway (systemd stage 1), so kmsg is where boot logs live. The
//! `kernlog` crate writes `<5>` for info and prefixes `target[pid]`; we need
//! `<6>` and a fixed `root-rotate:` prefix that tests and users can grep, so
//! this is a forty-line logger instead.
//!
//! Lines also go to stderr when kmsg is not writable, when stderr is an
//! interactive terminal other than the console (a rescue shell over ssh), or
//! when `ROOT_ROTATE_LOG=stderr` (then only to stderr; used by tests).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::FileTypeExt;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct KmsgLogger {
    kmsg: Option<Mutex<File>>,
    stderr: bool,
}

fn level_number(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

impl Log for KmsgLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(kmsg) = &self.kmsg {
            // One write() per line: kmsg takes each write as one record.
            let line = format!(
                "<{}>root-rotate: {}\n",
                level_number(record.level()),
                record.args()
            );
            if let Ok(mut f) = kmsg.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        if self.stderr {
            let tag = match record.level() {
                Level::Error => "error: ",
                Level::Warn => "warning: ",
                _ => "",
            };
            let _ = writeln!(std::io::stderr(), "root-rotate: {tag}{}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Whether stderr is a terminal that is not `/dev/console` (5:1), where kmsg
/// lines would already show up.
fn stderr_is_private_terminal() -> bool {
    use std::os::unix::fs::MetadataExt;
    if !std::io::stderr().is_terminal() {
        return false;
    }
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return true;
    };
    !(meta.file_type().is_char_device() && meta.rdev() == rustix::fs::makedev(5, 1))
}

pub fn init() {
    let only_stderr = std::env::var_os("ROOT_ROTATE_LOG").is_some_and(|v| v == "stderr");
    let kmsg = if only_stderr {
        None
    } else {
        OpenOptions::new()
            .write(true)
            .open("/dev/kmsg")
            .ok()
            .map(Mutex::new)
    };
    let stderr = only_stderr || kmsg.is_none() || stderr_is_private_terminal();
    let logger = Box::new(KmsgLogger { kmsg, stderr });
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
