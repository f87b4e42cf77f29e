//! `list`: the human table and `--json`.

mod common;

use serde_json::Value;

use common::{now, parse_rfc3339_utc, snippet_stamp, stamp, Fixture, DAY};

#[test]
fn list_json_reports_name_time_id_format_nested_and_keep() {
    let fx = fixture!(bare "list_json_fields");
    let t = now();
    let due = stamp(t - 60 * DAY);
    let snippet_due = snippet_stamp(t - 50 * DAY);
    let young = stamp(t - 2 * DAY);
    let newest = stamp(t - 40 * DAY); // due by age, kept as the most recent
    fx.subvol("@old_roots");
    for n in [&due, &snippet_due, &young, &newest] {
        fx.subvol(&format!("@old_roots/{n}"));
    }
    fx.subvol(&format!("@old_roots/{due}/a"));
    fx.subvol(&format!("@old_roots/{due}/a/b"));
    fx.subvol(&format!("@old_roots/{young}/var/lib/x"));
    fx.subvol("@old_roots/docker"); // foreign: not listed
    fx.mkdir(&format!("@old_roots/{}", stamp(t - 70 * DAY))); // plain dir: foreign
    let before = fx.state();

    let run = fx.rr("list", &["--json", "--keep-at-least", "1"]).ok();
    assert_eq!(fx.state(), before, "list changed something");

    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e}): {}", run.stdout));
    let items = v.as_array().expect("an array");
    assert_eq!(items.len(), 4, "{v:#}");
    let find = |name: &str| {
        items
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing from {v:#}"))
    };
    let expect = [
        (&due, t - 60 * DAY, "root-rotate", 2, false),
        (&snippet_due, t - 50 * DAY, "snippet", 0, false),
        (&young, t - 2 * DAY, "root-rotate", 1, true),
        (&newest, t - 40 * DAY, "root-rotate", 0, true),
    ];
    for (name, epoch, format, nested, keep) in expect {
        let o = find(name);
        for field in ["name", "time", "id", "format", "nested", "keep"] {
            assert!(o.get(field).is_some(), "{field} missing in {o}");
        }
        let time = o["time"].as_str().expect("time is a string");
        assert_eq!(
            parse_rfc3339_utc(time),
            Some(epoch),
            "time {time} of {name}"
        );
        assert_eq!(
            o["id"].as_u64(),
            Some(fx.subvol_id(&format!("@old_roots/{name}"))),
            "{o}"
        );
        assert_eq!(o["format"], format, "{o}");
        assert_eq!(o["nested"].as_u64(), Some(nested), "{o}");
        assert_eq!(o["keep"].as_bool(), Some(keep), "{o}");
        if let Some(age) = o.get("age_seconds") {
            let age = age.as_i64().unwrap();
            assert!((age - (t - epoch)).abs() <= 5, "age {age} of {name}");
        }
    }
    assert!(!run.stdout.contains("docker"));
}

#[test]
fn list_of_a_missing_archive_directory_fails_and_an_empty_one_is_an_empty_array() {
    let fx = fixture!(bare "list_json_empty");
    fx.subvol("old_roots");
    // A wrong --archive is an error that names what is there, not an empty list.
    let run = fx.rr("list", &["--json"]).fails_with(1);
    assert!(
        run.errors()[0].contains("@old_roots does not exist"),
        "{run:#?}"
    );
    assert!(
        run.errors()[0].contains("old_roots") && run.errors()[0].contains("--archive"),
        "{run:#?}"
    );
    assert!(run.stdout.is_empty(), "{run:#?}");
    assert!(!fx.exists("@old_roots"), "list must not create anything");
    fx.subvol("@old_roots");
    let run = fx.rr("list", &["--json"]).ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v, Value::Array(vec![]));
}

#[test]
fn list_json_matches_the_archives_made_by_rotate() {
    let fx = fixture!("list_json_after_rotations");
    for _ in 0..3 {
        fx.rr("rotate", &[]).ok();
    }
    let run = fx.rr("list", &["--json"]).ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let mut names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, fx.archives());
    assert!(v.as_array().unwrap().iter().all(|o| o["keep"] == true));
}

#[test]
fn list_table_shows_each_archive_and_the_policy_decision() {
    let fx = Fixture::new("list_table");
    let Some(fx) = fx else { return };
    let t = now();
    let due = stamp(t - 60 * DAY);
    let young = stamp(t - DAY);
    fx.subvol("@old_roots");
    fx.subvol(&format!("@old_roots/{due}"));
    fx.subvol(&format!("@old_roots/{young}"));
    let run = fx.rr("list", &["--keep-at-least", "0"]).ok();
    let line_of = |name: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not in table:\n{}", run.stdout))
            .to_owned()
    };
    assert!(line_of(&due).contains("delete"), "{}", run.stdout);
    assert!(!line_of(&young).contains("delete"), "{}", run.stdout);
    assert!(line_of(&young).contains("keep"), "{}", run.stdout);
    assert!(run.stdout.contains("2 archives"), "{}", run.stdout);
}

#[test]
fn list_shows_a_mounted_due_archive_as_kept() {
    let fx = fixture!("list_mounted");
    let due = stamp(now() - 60 * DAY);
    fx.subvol(&format!("@old_roots/{due}"));
    fx.mount_subvol(&format!("@old_roots/{due}"), &fx.dir().join("m"));
    let run = fx.rr("list", &["--keep-at-least", "0"]).ok();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&due))
        .unwrap()
        .to_owned();
    assert!(line.contains("mounted"), "{}", run.stdout);
}
