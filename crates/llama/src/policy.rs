//! How instances are watched, restarted, stopped and logged. The defaults are for
//! people; tests shrink every duration so nothing waits for seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use switchyard_process::StopPolicy;

/// Restarting after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    pub enabled: bool,
    /// Delay before the first restart; each further restart within the window
    /// doubles it.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// At most this many starts within `window`; the next crash leaves the
    /// instance failed until the person starts it again.
    pub start_limit: u32,
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            start_limit: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// Health checks on `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// While starting and loading: short, so "healthy" is seen within a poll of
    /// the server being ready (a local GET costs well under a millisecond).
    pub loading_interval: Duration,
    pub healthy_interval: Duration,
    pub probe_timeout: Duration,
    /// Consecutive failed checks of a healthy server before it is unhealthy.
    pub unhealthy_after: u32,
    /// A server not healthy within this is ended and counts as failed.
    pub load_timeout: Duration,
    /// An unhealthy server that stays so this long is ended and restarted like a
    /// crashed one (a hung server holds its memory and serves nobody); `None`
    /// leaves it running.
    pub restart_unhealthy_after: Option<Duration>,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            loading_interval: Duration::from_millis(10),
            healthy_interval: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(3),
            unhealthy_after: 3,
            load_timeout: Duration::from_secs(600),
            restart_unhealthy_after: Some(Duration::from_secs(60)),
        }
    }
}

/// How much of the server's output is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPolicy {
    /// Lines kept in memory per instance for the UI.
    pub ring_lines: usize,
    /// A log file is rotated when it reaches this size.
    pub file_bytes: u64,
    /// Rotated files kept beside the current one.
    pub files_kept: u32,
}

impl Default for LogPolicy {
    fn default() -> Self {
        Self {
            ring_lines: 2000,
            file_bytes: 5 * 1024 * 1024,
            files_kept: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SupervisionPolicy {
    pub restart: RestartPolicy,
    pub health: HealthPolicy,
    pub stop: StopPolicy,
    pub logs: LogPolicy,
    /// Conversations kept across a stop (see `saved_slots`).
    pub slots: crate::saved_slots::SlotSavePolicy,
}

/// When an instance was started lately, for the start limit and the backoff.
#[derive(Debug, Default)]
pub(crate) struct StartHistory {
    starts: VecDeque<Instant>,
}

impl StartHistory {
    pub fn record(&mut self, at: Instant) {
        self.starts.push_back(at);
    }

    /// Starts within `window` before `now`.
    pub fn recent(&mut self, now: Instant, window: Duration) -> u32 {
        while self
            .starts
            .front()
            .is_some_and(|start| now.saturating_duration_since(*start) > window)
        {
            self.starts.pop_front();
        }
        u32::try_from(self.starts.len()).unwrap_or(u32::MAX)
    }
}

impl RestartPolicy {
    /// The delay before the next start when `recent_starts` happened within the
    /// window: 1 s after the first start, 2 s after the second, … capped.
    pub fn backoff(&self, recent_starts: u32) -> Duration {
        let doublings = recent_starts.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RestartPolicy::default();
        let delays: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn old_starts_leave_the_window() {
        let mut history = StartHistory::default();
        let start = Instant::now();
        history.record(start);
        history.record(start + Duration::from_secs(5));
        let window = Duration::from_secs(10);
        assert_eq!(history.recent(start + Duration::from_secs(6), window), 2);
        assert_eq!(history.recent(start + Duration::from_secs(12), window), 1);
    }
}
