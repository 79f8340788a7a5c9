//! Waiting for something to happen, with a deadline and never a fixed sleep: the condition is
//! asked again at once, then at growing intervals (1 ms doubling up to 50 ms), so a test waits
//! only as long as the system needs and fails with a reason when it never happens.

use std::time::{Duration, Instant};

/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// Calls `f` until it returns `Some`, and returns that value; gives `None` once `timeout` has
/// passed (for paths that must not panic, such as a `Drop`).
pub fn try_wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Calls `f` until it returns `Some`, and returns that value.
///
/// # Panics
/// When `timeout` passes first: "timed out after {timeout} waiting for {what}".
pub fn wait_for<T>(timeout: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    match try_wait_for(timeout, f) {
        Some(v) => v,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Calls `cond` until it is true.
///
/// # Panics
/// As [`wait_for`].
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(timeout, what, || cond().then_some(()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value_and_asks_no_more() {
        let mut calls = 0;
        let v = wait_for(Duration::from_secs(5), "the third call", || {
            calls += 1;
            (calls == 3).then_some(calls * 10)
        });
        assert_eq!((v, calls), (30, 3));
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let start = Instant::now();
        let r: Option<()> = try_wait_for(Duration::from_millis(30), || None);
        assert!(r.is_none());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(30), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible")]
    fn a_timeout_says_what_it_waited_for() {
        wait_until(Duration::from_millis(10), "the impossible", || false);
    }
}
