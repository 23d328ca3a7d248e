//! The latest logical time the collector has applied, for callers that wait on it: the engine
//! before an erasure, the live service's driver to bound the times in flight, and the benches.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

/// The latest logical time the collector has applied, for callers that wait on it.
#[derive(Default)]
pub struct Frontier {
    /// `(latest applied time, whether the collector has stopped)`.
    state: Mutex<(Option<u64>, bool)>,
    /// Signalled on every change of `state`.
    changed: Condvar,
}

impl Frontier {
    /// Records that `time` has been applied.
    pub fn advance(&self, time: u64) {
        self.state.lock().expect("frontier lock").0 = Some(time);
        self.changed.notify_all();
    }

    /// Records that no further time will be applied.
    pub fn close(&self) {
        self.state.lock().expect("frontier lock").1 = true;
        self.changed.notify_all();
    }

    /// The latest applied time, if any.
    pub fn applied(&self) -> Option<u64> {
        self.state.lock().expect("frontier lock").0
    }

    /// Blocks until `time` has been applied, the collector has stopped or `deadline` has
    /// passed, whichever comes first; returns the latest applied time.
    pub fn wait_until(&self, time: u64, deadline: Instant) -> Option<u64> {
        self.wait(time, Some(deadline))
    }

    /// Blocks until `time` has been applied; `false` if the collector stopped before that.
    pub fn wait_for(&self, time: u64) -> bool {
        self.wait(time, None).is_some_and(|applied| applied >= time)
    }

    /// Blocks until `time` has been applied, the collector has stopped or `deadline`, if any,
    /// has passed; returns the latest applied time.
    fn wait(&self, time: u64, deadline: Option<Instant>) -> Option<u64> {
        let mut state = self.state.lock().expect("frontier lock");
        loop {
            if state.0.is_some_and(|applied| applied >= time) || state.1 {
                return state.0;
            }
            state = match deadline {
                None => self.changed.wait(state).expect("frontier lock"),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return state.0;
                    }
                    self.changed.wait_timeout(state, deadline - now).expect("frontier lock").0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Frontier;

    #[test]
    fn wait_until_returns_at_the_deadline_when_the_time_is_not_applied() {
        let frontier = Frontier::default();
        frontier.advance(3);
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(frontier.wait_until(4, deadline), Some(3));
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn wait_until_wakes_when_the_time_is_applied_or_the_collector_stops() {
        let frontier = Arc::new(Frontier::default());
        let far = Instant::now() + Duration::from_secs(60);
        let advancing = frontier.clone();
        let advancer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            advancing.advance(1);
            std::thread::sleep(Duration::from_millis(10));
            advancing.advance(2);
            std::thread::sleep(Duration::from_millis(10));
            advancing.close();
        });
        assert_eq!(frontier.wait_until(2, far), Some(2));
        assert_eq!(frontier.wait_until(5, far), Some(2));
        assert!(Instant::now() < far);
        advancer.join().expect("advancer");
    }
}
