//! This machine and its processes: the host name recorded in snapshots and jobs, and whether
//! the process that started a job still runs (from `/proc`, so Linux only; elsewhere it
//! cannot be told and is taken to run).

/// The host name, as the kernel had it when this process first asked (a pass over many
/// sources asks for every job).
pub fn name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "unknown".into())
    })
    .clone()
}

/// When process `pid` started, in clock ticks since boot: with the pid, it tells a process
/// from a later one that was given the same pid. `None` if there is no such process or
/// `/proc` cannot say.
pub fn process_start(pid: u32) -> Option<u64> {
    start_of(&stat_fields(pid)?)
}

/// Whether a process recorded as `pid`, started at `started` (if known), still runs here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Running,
    /// It ended (or is a zombie), or its pid now belongs to a process started later.
    Gone,
    /// This system has no `/proc` to ask.
    Unknown,
}

pub fn liveness(pid: u32, started: Option<u64>) -> Liveness {
    if std::fs::metadata("/proc/self/stat").is_err() {
        return Liveness::Unknown;
    }
    let Some(fields) = stat_fields(pid) else {
        return Liveness::Gone;
    };
    let zombie = matches!(fields.first().map(String::as_str), Some("Z" | "X"));
    let reused = matches!((started, start_of(&fields)), (Some(a), Some(b)) if a != b);
    if zombie || reused {
        Liveness::Gone
    } else {
        Liveness::Running
    }
}

/// The fields of `/proc/PID/stat` from the third (the state) on: the command name before
/// them is in parentheses and may itself hold spaces and parentheses.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Field 22, the start time.
fn start_of(fields: &[String]) -> Option<u64> {
    fields.get(19)?.parse().ok()
}

/// Large buffers (index objects, page lists, pieces of packs) are freed as a job moves from
/// stage to stage, and glibc would keep them in the arena of the thread that freed them, so
/// resident memory would grow toward the sum of the stages' peaks. Blocks of 1 MiB and more
/// are mapped on their own instead, and unmapped when freed.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator, which it documents as safe
    // to change at any time; an unknown or refused parameter returns 0 and changes nothing.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Hands the system what the allocator holds but no longer uses, between the phases of a long
/// job: blocks under 1 MiB (see [`return_freed_memory`]) that finished threads freed stay in
/// their arenas, so a copy's backup would otherwise peak on top of what its restore left.
pub fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it is thread-safe and only returns pages that
    // hold no allocation to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// This process's resident memory now and at its peak, in MiB, for `-vv` stage timings (Linux
/// only; `None` elsewhere).
pub fn memory_mib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_reaped_child_is_gone() {
        let me = std::process::id();
        let started = process_start(me);
        assert!(started.is_some());
        assert_eq!(liveness(me, started), Liveness::Running);
        assert_eq!(liveness(me, None), Liveness::Running);
        assert_eq!(liveness(me, started.map(|s| s + 1)), Liveness::Gone);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(liveness(pid, None), Liveness::Gone);
    }
}
