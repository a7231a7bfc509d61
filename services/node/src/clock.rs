//! The group's clock: the time a leader writes into a Raft entry.
//!
//! Apply takes time only from the entry, and keeps it monotonic, so a leader whose clock ran
//! ahead would move the group's "today" for good. Two rules bound that:
//!
//! 1. **The leader stamps the median clock of the group.** Once a second the leader asks every
//!    other voter for its clock (`RaftService.Clock`) and estimates each peer's offset from the
//!    round trip (peer time minus the midpoint of the call). An entry carries the leader's
//!    clock plus the median of the offsets of the voters heard from in the last
//!    [`FRESH`] (its own offset being 0). With three replicas one wrong clock, the leader's
//!    included, cannot move the stamp: the median is a correct clock's. A leader whose own
//!    clock is more than [`SKEW_WARN_MS`] off the median logs a warning (once a minute).
//! 2. **Apply moves time by at most `MAX_CLOCK_STEP_MS` per entry**
//!    ([`medmesh_state::group_time`]): whatever an entry carries, the group's time advances by
//!    ten minutes at most. So that an idle group's time does not fall behind for this reason,
//!    the leader proposes an empty entry when the group's time lags its stamp by more than
//!    half a step, repeating until it is within a step (after an outage of the whole group).
//!
//! When a forged or skewed entry leaps ahead anyway, the group's time runs ahead by at most
//! one step per entry, and the leader's stamps (the median) stop feeding it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medmesh_storage::NodeId;
use medmesh_types::LogTime;

/// How long a peer's measured offset is used.
pub const FRESH: Duration = Duration::from_secs(5);
/// Offset from the group's median above which the leader warns about its own clock.
pub const SKEW_WARN_MS: i64 = 1_000;

/// The replica's configured clock offset (`clock_offset_ms`), set once at start.
static OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Sets the replica's clock offset (at start, from its configuration).
pub fn set_offset_ms(offset: i64) {
    OFFSET_MS.store(offset, std::sync::atomic::Ordering::Relaxed);
}

/// Milliseconds since the epoch, from this machine's clock shifted by the configured offset.
pub fn now_ms() -> i64 {
    let real =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    real.saturating_add(OFFSET_MS.load(std::sync::atomic::Ordering::Relaxed))
}

/// The median of the offsets: with an even count, the lower middle one (no averaging, so the
/// result is always some replica's clock).
pub fn median_offset(mut offsets: Vec<i64>) -> i64 {
    if offsets.is_empty() {
        return 0;
    }
    offsets.sort_unstable();
    offsets[(offsets.len() - 1) / 2]
}

/// A peer's clock offset from one round trip: its reading minus the midpoint of the call.
pub fn offset_from_round_trip(sent_ms: i64, peer_ms: i64, received_ms: i64) -> i64 {
    peer_ms - (sent_ms + (received_ms - sent_ms) / 2)
}

/// Offsets of the peers' clocks, as this replica last measured them.
#[derive(Default)]
pub struct GroupClock {
    offsets: Mutex<BTreeMap<NodeId, (i64, Instant)>>,
    last_warning: Mutex<Option<Instant>>,
}

impl GroupClock {
    /// Records a measured offset of `peer`.
    pub fn record(&self, peer: NodeId, offset_ms: i64) {
        if let Ok(mut m) = self.offsets.lock() {
            m.insert(peer, (offset_ms, Instant::now()));
        }
    }

    /// Forgets peers no longer in the group.
    pub fn retain(&self, peers: &[NodeId]) {
        if let Ok(mut m) = self.offsets.lock() {
            m.retain(|id, _| peers.contains(id));
        }
    }

    /// The median offset of this replica and the peers heard from recently.
    pub fn offset(&self) -> i64 {
        let mut offsets = vec![0];
        if let Ok(m) = self.offsets.lock() {
            offsets.extend(m.values().filter(|(_, at)| at.elapsed() <= FRESH).map(|(o, _)| *o));
        }
        let median = median_offset(offsets);
        if median.abs() > SKEW_WARN_MS {
            if let Ok(mut w) = self.last_warning.lock() {
                if w.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    *w = Some(Instant::now());
                    tracing::warn!(
                        offset_ms = median,
                        "this replica's clock is off the group's median; entries carry the median"
                    );
                }
            }
        }
        median
    }

    /// The time to write into an entry proposed now.
    pub fn stamp(&self) -> LogTime {
        LogTime(now_ms().saturating_add(self.offset()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_wrong_clock_of_three_does_not_move_the_median() {
        // The leader's clock is a year ahead: both peers read a year behind it.
        let year = 365 * 86_400_000;
        assert_eq!(median_offset(vec![0, -year, -year + 3]), -year + 3);
        // A follower's clock is a year ahead: ignored.
        assert_eq!(median_offset(vec![0, year, 2]), 2);
        // Alone, or with one peer heard from: the lower middle, never an average.
        assert_eq!(median_offset(vec![0]), 0);
        assert_eq!(median_offset(vec![0, -40]), -40);
        assert_eq!(median_offset(vec![]), 0);
    }

    #[test]
    fn offsets_are_measured_from_the_midpoint_of_the_call() {
        // Sent at 1000, answered 1010, peer read 2005 at the midpoint 1005: 1000 ms ahead.
        assert_eq!(offset_from_round_trip(1_000, 2_005, 1_010), 1_000);
        assert_eq!(offset_from_round_trip(1_000, 1_005, 1_010), 0);
    }
}
