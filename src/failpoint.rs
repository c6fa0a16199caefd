//! Crash injection for tests: `IVAULT_FAILPOINT=name[:n]` kills the process the n-th time
//! (default first) execution reaches the named point, as abruptly as `kill -9` would.
//! Points after a whole object is stored: `pack-written`, `index-written`, `manifest-written`.
//! Points in the middle of one: `temp-half-written` (a local write, half of the temporary file
//! written, before its fsync and link), `part-uploaded` (an S3 multipart upload, after one of
//! its parts). In the sweep of what killed runs left: `leftover-removed` (after each temporary
//! file removed or multipart upload aborted).
//! In a restore: `restore-pages-written` (every page written, before verifying and placing
//! the file).

use std::sync::atomic::{AtomicU32, Ordering};

pub const ENV: &str = "IVAULT_FAILPOINT";

static HITS: AtomicU32 = AtomicU32::new(0);

pub fn hit(name: &str) {
    let Ok(spec) = std::env::var(ENV) else { return };
    let (point, nth) = match spec.split_once(':') {
        Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
        None => (spec, 1),
    };
    if point != name {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 >= nth {
        // One thread says it and aborts; another reaching the point meanwhile waits here
        // forever, so it cannot leave half a line behind when the abort lands.
        static DYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _held = DYING.lock();
        eprintln!("ivault: failpoint {name} reached, aborting");
        std::process::abort();
    }
}
