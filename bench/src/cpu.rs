//! A server's CPU time, read from `/proc`, and a bounded wait until servers are idle: what lets
//! one run on a shared two-core machine measure each server alone, and compare builds by the
//! CPU a query costs rather than by latencies that drift with whatever else the machine does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Linux reports a process's CPU times in `/proc/<pid>/stat` in units of USER_HZ, which is 100
/// on every architecture Fletch runs on.
const USER_HZ: u64 = 100;

/// The CPU time (user + system, every thread) `/proc/<pid>/stat` reports for `pid`, in whole
/// clock ticks (10 ms).
pub fn process_cpu(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    cpu_of_stat(&text).ok_or_else(|| format!("{path}: no CPU times in {text:?}"))
}

/// utime and stime of a `/proc/<pid>/stat` line: fields 14 and 15, counted after the command
/// name in parentheses (which may itself hold spaces and parentheses).
fn cpu_of_stat(stat: &str) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// How long each thread of a process has run, in nanoseconds, by thread id: the first field of
/// `/proc/<pid>/task/<tid>/schedstat`. Finer than [`process_cpu`]'s ticks, which at a few
/// milliseconds per query would make a type's CPU time per query a multiple of 0.5 ms.
#[derive(Debug, Clone, Default)]
pub struct ThreadCpu(HashMap<u32, u64>);

impl ThreadCpu {
    /// The threads of `pid` now; `None` where the kernel keeps no schedstat.
    pub fn read(pid: u32) -> Option<Self> {
        let mut out = HashMap::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
            let Ok(entry) = entry else { continue };
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            // A thread may exit between listing and reading: it is left out.
            let Ok(text) = std::fs::read_to_string(entry.path().join("schedstat")) else {
                continue;
            };
            out.insert(tid, text.split_whitespace().next()?.parse().ok()?);
        }
        Some(Self(out))
    }

    /// What the process ran since `earlier`: every thread's time now less its time then (a
    /// thread started since counts whole; one that ended since is not counted).
    pub fn since(&self, earlier: &Self) -> Duration {
        let ns = self
            .0
            .iter()
            .map(|(tid, now)| now.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// A process's CPU time, read finely where the kernel allows it.
#[derive(Debug, Clone)]
pub enum CpuReading {
    Threads(ThreadCpu),
    Ticks(Duration),
}

impl CpuReading {
    pub fn of(pid: u32) -> Result<Self, String> {
        match ThreadCpu::read(pid) {
            Some(t) => Ok(Self::Threads(t)),
            None => process_cpu(pid).map(Self::Ticks),
        }
    }

    /// CPU used from `earlier` to `self` (both of one process).
    pub fn since(&self, earlier: &Self) -> Duration {
        match (self, earlier) {
            (Self::Threads(a), Self::Threads(b)) => a.since(b),
            (Self::Ticks(a), Self::Ticks(b)) => a.saturating_sub(*b),
            _ => Duration::ZERO,
        }
    }
}

/// How quiet the machine must be before a query type is timed: the processes watched may use
/// at most [`QUIET_SHARE`] of one core over a [`QUIET_WINDOW`], and the wait ends, quiet or
/// not, after [`QUIET_DEADLINE`].
const QUIET_WINDOW: Duration = Duration::from_millis(250);
const QUIET_SHARE: f64 = 0.02;
const QUIET_DEADLINE: Duration = Duration::from_secs(20);

/// Waits until none of `pids` is busy (a server still compacting, or collecting garbage after
/// the queries before), so that each type is timed on a machine doing nothing else. Returns
/// whether they were quiet before the deadline; a process that has gone counts as quiet.
pub async fn wait_quiet(pids: &[u32]) -> bool {
    wait_quiet_for(pids, QUIET_DEADLINE).await
}

pub async fn wait_quiet_for(pids: &[u32], patience: Duration) -> bool {
    if pids.is_empty() {
        return true;
    }
    let limit = QUIET_WINDOW.mul_f64(QUIET_SHARE);
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let before: Vec<Option<CpuReading>> =
            pids.iter().map(|p| CpuReading::of(*p).ok()).collect();
        tokio::time::sleep(QUIET_WINDOW).await;
        let busy = pids
            .iter()
            .zip(&before)
            .any(|(p, b)| match (b, CpuReading::of(*p).ok()) {
                (Some(b), Some(a)) => a.since(b) > limit,
                _ => false,
            });
        if !busy {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_come_from_fields_14_and_15_after_the_command_name() {
        // A command name with a space and a parenthesis, as a thread may be named.
        let stat =
            "4242 (fletch d) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_of_stat(stat), Some(Duration::from_millis(3250)));
        assert_eq!(cpu_of_stat("4242 (fletchd) S 1"), None);
        // This test process has run for a while: its own times are there.
        assert!(process_cpu(std::process::id()).is_ok());
    }

    #[test]
    fn thread_cpu_counts_what_threads_ran_since_and_new_threads_whole() {
        let earlier = ThreadCpu(HashMap::from([(1, 1_000), (2, 5_000), (3, 700)]));
        // Thread 3 ended, thread 4 started; 1 and 2 ran on.
        let now = ThreadCpu(HashMap::from([(1, 1_500), (2, 5_000), (4, 2_000)]));
        assert_eq!(now.since(&earlier), Duration::from_nanos(500 + 2_000));
        // Reading this process: a busy loop on this thread shows up in its time.
        let Some(before) = ThreadCpu::read(std::process::id()) else {
            return; // a kernel without schedstat: process_cpu's ticks are used instead
        };
        let t0 = Instant::now();
        let mut x = 0u64;
        while t0.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = ThreadCpu::read(std::process::id()).unwrap();
        assert!(
            after.since(&before) >= Duration::from_millis(10),
            "{:?}",
            after.since(&before)
        );
    }

    #[tokio::test]
    async fn an_idle_or_gone_process_is_quiet_and_a_spinning_one_is_not() {
        // A sleeping child is quiet at once.
        let mut idle = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        assert!(wait_quiet(&[idle.id()]).await);
        assert!(t0.elapsed() < QUIET_DEADLINE);
        idle.kill().unwrap();
        idle.wait().unwrap();
        // A process that has gone counts as quiet.
        assert!(wait_quiet(&[idle.id()]).await);
        // A process spinning is not, and the wait gives up at its deadline.
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let quiet = wait_quiet_for(&[busy.id()], Duration::from_secs(1)).await;
        busy.kill().unwrap();
        busy.wait().unwrap();
        assert!(!quiet);
        assert!(t0.elapsed() < Duration::from_secs(3));
    }
}
