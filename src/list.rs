//! `list`: the archives, their age, and what the current policy would do.

use crate::btrfs::{self, TopLevel};
use crate::cli::Target;
use crate::error::Result;
use crate::inventory;
use crate::json;
use crate::policy::{Decision, Retention};
use crate::prune;
use crate::rotate::now;
use crate::stamp;

pub fn list(target: &Target, retention: Retention, as_json: bool) -> Result<()> {
    btrfs::check_device(&target.device)?;
    let top = TopLevel::mount(&target.device, &target.mount_point, true)?;
    inventory::existing_archive_dir(&top, &target.archive)?;
    let archives = inventory::scan(&top, &target.archive)?.archives;
    let nested = archives
        .iter()
        .map(|a| inventory::nested_count(&top, a))
        .collect::<Result<Vec<_>>>()?;
    top.unmount()?;
    let now = now();
    let plan = prune::plan(&archives, now, retention);
    let mut out = String::new();
    if as_json {
        out.push('[');
        for (i, a) in archives.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "\n  {{\"name\":{},\"id\":{},\"time\":{},\"format\":{},\"nested\":{},\"age_seconds\":{},\"keep\":{},\"mounted\":{}}}",
                json::string(&a.name),
                a.id,
                json::string(&stamp::rfc3339(a.stamp.epoch)),
                json::string(a.stamp.format.as_str()),
                nested[i],
                now - a.stamp.epoch,
                plan.decisions[i].keeps(),
                a.busy
            ));
        }
        out.push_str(if archives.is_empty() { "]\n" } else { "\n]\n" });
    } else {
        out.push_str(&format!(
            "{:<26} {:>6} {:<20} {:>9} {:>6}  {}\n",
            "NAME", "ID", "STAMP (UTC)", "AGE", "NESTED", "POLICY"
        ));
        for (i, a) in archives.iter().enumerate() {
            let policy = match plan.decisions[i] {
                Decision::KeepRecent => "keep (most recent)",
                Decision::KeepYoung => "keep",
                Decision::Delete if a.busy => "due, but mounted: kept",
                Decision::Delete => "delete (due)",
            };
            out.push_str(&format!(
                "{:<26} {:>6} {:<20} {:>9} {:>6}  {policy}\n",
                a.name,
                a.id,
                stamp::rfc3339(a.stamp.epoch),
                age(now - a.stamp.epoch),
                nested[i]
            ));
        }
        out.push_str(&format!(
            "{} archive{}; policy: keep {} days, at least {}\n",
            archives.len(),
            if archives.len() == 1 { "" } else { "s" },
            retention.keep_days,
            retention.keep_at_least
        ));
    }
    print!("{out}");
    Ok(())
}

/// `3d 04h`, `5h 02m`, `42s`; negative ages (future stamps) get a minus sign.
fn age(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let text = match s {
        s if s >= 86_400 => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_in_the_largest_sensible_unit() {
        assert_eq!(super::age(42), "42s");
        assert_eq!(super::age(3 * 86_400 + 4 * 3600 + 5), "3d 04h");
        assert_eq!(super::age(-2 * 3600), "-2h 00m");
    }
}
