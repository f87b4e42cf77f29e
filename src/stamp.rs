//! Archive names: formatting our stamps and parsing ours and the snippet's.
//!
//! Pure: no I/O. Our stamp is `YYYY-MM-DDTHH:MM:SSZ` (UTC), optionally followed
//! by a collision counter `-NNNN`, so names sort in time order and two
//! rotations in the same second get distinct names. The impermanence README
//! snippet named archives `%Y-%m-%-d_%H:%M:%S` (unpadded day, local time of the
//! initrd, which is UTC there); we read those as UTC so migrating users get
//! their old archives managed.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Which scheme produced an archive name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    RootRotate,
    Snippet,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::RootRotate => "root-rotate",
            Format::Snippet => "snippet",
        }
    }
}

/// A parsed archive name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Seconds since the Unix epoch, UTC.
    pub epoch: i64,
    pub format: Format,
}

/// The highest collision counter we append. Ten thousand rotations in one
/// second only happen with a clock stuck at one value; by then something
/// else is badly wrong and failing loudly is right.
pub const MAX_COUNTER: u32 = 9999;

/// Our name for an archive made at `epoch`; `counter` 0 or 1 means no suffix.
pub fn format(epoch: i64, counter: u32) -> String {
    let t = OffsetDateTime::from_unix_timestamp(epoch).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if counter <= 1 {
        base
    } else {
        format!("{base}-{counter:04}")
    }
}

/// RFC 3339 form of `epoch`, for JSON output.
pub fn rfc3339(epoch: i64) -> String {
    format(epoch, 0)
}

/// Parses an archive name in either scheme; `None` for anything else.
pub fn parse(name: &str) -> Option<Stamp> {
    parse_ours(name)
        .map(|epoch| Stamp {
            epoch,
            format: Format::RootRotate,
        })
        .or_else(|| {
            parse_snippet(name).map(|epoch| Stamp {
                epoch,
                format: Format::Snippet,
            })
        })
}

fn parse_ours(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    match &name[20..] {
        "" => {}
        suffix => {
            let digits = suffix.strip_prefix('-')?;
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let n: u32 = digits.parse().ok()?;
            if !(2..=MAX_COUNTER).contains(&n) {
                return None;
            }
        }
    }
    let num = |r: std::ops::Range<usize>| fixed_digits(&name[r]);
    to_epoch(
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    )
}

/// `%Y-%m-%-d_%H:%M:%S`: four-digit year, two-digit month, one- or two-digit
/// day, two-digit time fields.
fn parse_snippet(name: &str) -> Option<i64> {
    let (date, clock) = name.split_once('_')?;
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    let mut c = clock.split(':');
    let (h, min, s) = (c.next()?, c.next()?, c.next()?);
    if d.next().is_some() || c.next().is_some() || y.len() != 4 || m.len() != 2 {
        return None;
    }
    if day.is_empty() || day.len() > 2 || day.starts_with('0') {
        return None;
    }
    if h.len() != 2 || min.len() != 2 || s.len() != 2 {
        return None;
    }
    let n = fixed_digits;
    to_epoch(n(y)?, n(m)?, n(day)?, n(h)?, n(min)?, n(s)?)
}

fn fixed_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn to_epoch(y: u32, m: u32, d: u32, h: u32, min: u32, s: u32) -> Option<i64> {
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(min).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Validates a name given on the command line: one path component.
pub fn check_component(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(format!(
            "{what} {name:?} must be a single name directly under the top level (no '/', '.' or '..')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_22: i64 = 1_795_385_408; // 2026-11-22T22:10:08Z

    #[test]
    fn formats_utc_with_fixed_width_fields() {
        assert_eq!(format(NOV_22, 0), "2026-11-22T22:10:08Z");
        assert_eq!(format(0, 1), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn appends_a_zero_padded_counter_on_collision() {
        assert_eq!(format(NOV_22, 2), "2026-11-22T22:10:08Z-0002");
        assert_eq!(format(NOV_22, 9999), "2026-11-22T22:10:08Z-9999");
    }

    #[test]
    fn round_trips_our_names() {
        for counter in [0, 2, 17, MAX_COUNTER] {
            let s = parse(&format(NOV_22, counter)).unwrap();
            assert_eq!(s.epoch, NOV_22);
            assert_eq!(s.format, Format::RootRotate);
        }
    }

    #[test]
    fn names_sort_in_time_order_including_collisions() {
        let mut names = vec![
            format(NOV_22 + 1, 0),
            format(NOV_22, 3),
            format(NOV_22, 0),
            format(NOV_22, 2),
            format(NOV_22 - 86_400 * 400, 0),
        ];
        let expected = names.clone();
        names.sort();
        let by_time = [4, 2, 3, 1, 0].map(|i| expected[i].clone());
        assert_eq!(names, by_time);
    }

    #[test]
    fn reads_snippet_names_as_utc() {
        let s = parse("2026-11-2_22:10:08").unwrap();
        assert_eq!(s.format, Format::Snippet);
        assert_eq!(s.epoch, NOV_22 - 20 * 86_400);
        assert_eq!(parse("2026-11-22_22:10:08").unwrap().epoch, NOV_22);
    }

    #[test]
    fn rejects_foreign_and_malformed_names() {
        for name in [
            "",
            "root",
            "@root",
            "2026-11-22T22:10:08",
            "2026-11-22T22:10:08Z-2",
            "2026-11-22T22:10:08Z-0001",
            "2026-11-22T22:10:08Zjunk",
            "2026-13-22T22:10:08Z",
            "2026-02-30T22:10:08Z",
            "2026-11-22T24:10:08Z",
            "2026-11-02_22:10:08",
            "2026-11-2_22:10",
            "2026-11-2_22:10:08:01",
            "+026-11-22T22:10:08Z",
            "2026-11-22T22:10:08Z/x",
        ] {
            assert_eq!(parse(name), None, "{name:?} must not parse");
        }
    }

    #[test]
    fn rejects_names_that_escape_the_top_level() {
        for bad in ["", ".", "..", "a/b", "/abs", "x\0y"] {
            assert!(check_component("--root", bad).is_err(), "{bad:?}");
        }
        assert!(check_component("--root", "@root").is_ok());
        assert!(check_component("--root", "..hidden").is_ok());
    }
}
