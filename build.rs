//! Records the build time (or SOURCE_DATE_EPOCH, for reproducible builds) so
//! the binary can tell a clock that is plainly wrong: earlier than its build.
use std::time::{SystemTime, UNIX_EPOCH};

/// Never trust less than this: the date this floor was last raised.
const FLOOR: u64 = 1_793_491_200; // 2026-11-01T00:00:00Z

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let built = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!(
        "cargo:rustc-env=ROOT_ROTATE_BUILD_EPOCH={}",
        built.max(FLOOR)
    );
}
