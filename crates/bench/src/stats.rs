//! The statistics every scenario reports: percentiles (nearest rank on the sorted sample),
//! milliseconds, and a process's memory read from `/proc/<pid>/status`.

use std::time::Duration;

use serde_json::Value;

/// A number of the results, NaN when it is absent.
pub(crate) fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

pub(crate) fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// The `p`-th percentile (0–100) by nearest rank; NaN for an empty sample.
pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[rank.min(s.len() - 1)]
}

/// The quota model's floor for one event to `n` connections, in ms: no faster than `n /
/// concurrency` rounds of one post's latency, nor than the account throttle allows (a full
/// bucket's `burst` at once, the rest at `rate` a second, then the last post's latency).
pub(crate) fn fanout_floor_ms(
    n: usize,
    concurrency: usize,
    latency_ms: f64,
    rate: f64,
    burst: usize,
) -> f64 {
    let rounds = n.div_ceil(concurrency.max(1)) as f64 * latency_ms;
    let quota = n.saturating_sub(burst) as f64 / rate * 1000.0 + latency_ms;
    rounds.max(quota)
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A `kB` field (`VmRSS:`, `VmHWM:`) of a `/proc/<pid>/status` text; 0 when absent.
pub(crate) fn status_field_kb(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// A `kB` field of process `pid`'s status (its RSS now, or its peak).
pub(crate) fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| status_field_kb(&s, field))
        .unwrap_or(0)
}

/// User plus system CPU time in a `/proc/<pid>/stat` text, in clock ticks (fields 14 and 15;
/// the command name, field 2, may hold spaces, so fields are counted after its parenthesis).
pub(crate) fn stat_cpu_ticks(stat: &str) -> u64 {
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// CPU seconds process `pid` has used so far (0 when it is gone).
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let ticks_per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| stat_cpu_ticks(&s) as f64 / ticks_per_second)
        .unwrap_or(0.0)
}

/// CPU time of every live thread of a process, in seconds, from `/proc/<pid>/task/*/schedstat`
/// (nanoseconds on CPU: finer than `/proc/<pid>/stat`'s 10 ms ticks, which a 50 ms figure
/// needs). Threads that already exited are not counted: use it over windows in which the
/// process keeps its threads (a tokio runtime's workers).
pub(crate) fn cpu_seconds_fine(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e9
}

/// The TCP connections process `pid` holds to `port` (its socket inodes), from its file
/// descriptors and `/proc/<pid>/net/tcp{,6}`.
pub(crate) fn connections_to(pid: u32, port: u16) -> std::collections::BTreeSet<u64> {
    let owned: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(Result::ok)
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .filter_map(|link| {
                    let link = link.to_string_lossy().into_owned();
                    link.strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| remote_port_inodes(&table, port))
        .filter(|inode| owned.contains(inode))
        .collect()
}

/// The inodes of the sockets of a `/proc/net/tcp` table whose remote port is `port`.
pub(crate) fn remote_port_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote = fields.get(2)?;
            let remote_port = u16::from_str_radix(remote.rsplit(':').next()?, 16).ok()?;
            (remote_port == port).then(|| fields.get(9)?.parse().ok())?
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_of_the_sorted_sample() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn the_fanout_floor_is_the_slower_of_concurrency_and_quota() {
        // 10,000 at 400 in flight, 20 ms: 25 rounds = 500 ms; the quota: 5,000 at once, 5,000
        // more at 10,000/s = 500 ms, plus the last post's 20 ms.
        assert_eq!(fanout_floor_ms(10_000, 400, 20.0, 10_000.0, 5_000), 520.0);
        // 1,000 within the burst: concurrency alone (3 rounds).
        assert_eq!(fanout_floor_ms(1_000, 400, 20.0, 10_000.0, 5_000), 60.0);
        // Few in flight: concurrency dominates.
        assert_eq!(fanout_floor_ms(10_000, 25, 20.0, 10_000.0, 5_000), 8_000.0);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks_after_the_command_name() {
        let stat =
            "4242 (devhive realtime) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 9 0";
        assert_eq!(stat_cpu_ticks(stat), 1234 + 567);
        assert_eq!(stat_cpu_ticks("garbage"), 0);
        // This process's own count grows with work it does.
        let before = cpu_seconds(std::process::id());
        let (started, mut x) = (std::time::Instant::now(), 0u64);
        while started.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_seconds(std::process::id()) > before, "{x}");
    }

    #[test]
    fn connections_are_matched_by_remote_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A2C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1
   1: 0100007F:A2C6 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1
";
        assert_eq!(remote_port_inodes(table, 8080), vec![4242]);
        assert!(remote_port_inodes(table, 80).is_empty());
        // A real connection of this process is found by its remote port.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(connections_to(std::process::id(), port).len(), 1);
        // Fine CPU time grows with work, like the tick count: a busy child process (its own,
        // so that threads of other tests ending cannot lower the sum) is seen to use CPU.
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let before = cpu_seconds_fine(busy.id());
        let started = std::time::Instant::now();
        let grew = loop {
            let now = cpu_seconds_fine(busy.id());
            if now > before || started.elapsed() > Duration::from_secs(10) {
                break now > before;
            }
            std::thread::yield_now();
        };
        busy.kill().ok();
        busy.wait().ok();
        assert!(grew, "a busy process's CPU time never grew from {before}");
    }

    #[test]
    fn durations_in_milliseconds() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
        assert_eq!(ms(Duration::ZERO), 0.0);
    }

    #[test]
    fn memory_fields_are_read_from_proc_status() {
        let status = "Name:\tdevhive-realtime\nVmHWM:\t   31744 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(status_field_kb(status, "VmHWM:"), 31744);
        assert_eq!(status_field_kb(status, "VmRSS:"), 20480);
        assert_eq!(status_field_kb(status, "VmSwap:"), 0);
        // This process's own RSS is readable and non-zero.
        assert!(status_kb(std::process::id(), "VmRSS:") > 0);
    }
}
