//! Numbered crash points for the VM crash tests. Compiled to nothing unless
//! the `fault-injection` feature is on; release builds never contain it.

#[cfg(feature = "fault-injection")]
mod imp {
    use std::sync::atomic::{AtomicU32, Ordering};

    static REACHED: AtomicU32 = AtomicU32::new(0);

    enum Target {
        /// From the kernel command line: hard-reset, like a power cut.
        Reset(u32),
        /// From the environment (host tests): abort the process.
        Abort(u32),
        None,
    }

    fn target() -> Target {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        if let Some(k) = cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("root_rotate.crash_at="))
            .and_then(|k| k.parse().ok())
        {
            return Target::Reset(k);
        }
        match std::env::var("ROOT_ROTATE_CRASH_AT")
            .ok()
            .and_then(|k| k.parse().ok())
        {
            Some(k) => Target::Abort(k),
            None => Target::None,
        }
    }

    pub fn point(label: &str) {
        let n = REACHED.fetch_add(1, Ordering::SeqCst) + 1;
        let target = target();
        let k = match target {
            Target::Reset(k) | Target::Abort(k) => k,
            Target::None => return,
        };
        if n != k {
            return;
        }
        log::error!("fault-injection: crash at point {n} ({label})");
        log::logger().flush();
        if let Target::Reset(_) = target {
            // No sync: whatever the kernel has not written is lost, as in a power cut.
            let _ = rustix::system::reboot(rustix::system::RebootCommand::Restart);
        }
        std::process::abort();
    }

    pub fn finish() {
        let n = REACHED.load(Ordering::SeqCst);
        if let Target::Reset(k) | Target::Abort(k) = target() {
            log::warn!("fault-injection: point {k} not reached ({n} points)");
        }
    }
}

#[cfg(not(feature = "fault-injection"))]
mod imp {
    #[inline(always)]
    pub fn point(_label: &str) {}
    #[inline(always)]
    pub fn finish() {}
}

pub use imp::{finish, point};
