//! No panic crosses a WinFsp callback.
//!
//! winfsp-rs catches panics too, but answers `STATUS_NONCONTINUABLE_EXCEPTION`, which makes
//! programs think the machine is failing. Every callback of the Windows layer runs its body
//! through [`guard`], which logs the panic with the operation's name and answers
//! `STATUS_INTERNAL_ERROR` instead.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::status::{NtStatus, STATUS_INTERNAL_ERROR};

fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// Runs `body`; a panic becomes `STATUS_INTERNAL_ERROR` and a log line naming `op`.
///
/// # Errors
/// What `body` returns, or `STATUS_INTERNAL_ERROR` when it panicked.
pub fn guard<T>(
    op: &'static str,
    body: impl FnOnce() -> Result<T, NtStatus>,
) -> Result<T, NtStatus> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            log::error!(
                "winfsp {op}: internal error (panic: {})",
                message(&*payload)
            );
            Err(STATUS_INTERNAL_ERROR)
        }
    }
}

/// [`guard`] for callbacks that return nothing (`close`, `cleanup`).
pub fn guard_unit(op: &'static str, body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        log::error!(
            "winfsp {op}: internal error (panic: {})",
            message(&*payload)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::STATUS_ACCESS_DENIED;

    #[test]
    fn passes_results_through() {
        assert_eq!(guard("read", || Ok(7)), Ok(7));
        assert_eq!(
            guard::<()>("write", || Err(STATUS_ACCESS_DENIED)),
            Err(STATUS_ACCESS_DENIED)
        );
    }

    #[test]
    fn turns_panics_into_an_internal_error() {
        let r: Result<u32, NtStatus> = guard("open", || panic!("boom"));
        assert_eq!(r, Err(STATUS_INTERNAL_ERROR));
        let r: Result<u32, NtStatus> = guard("open", || panic!("{}", String::from("formatted")));
        assert_eq!(r, Err(STATUS_INTERNAL_ERROR));
        let mut ran = false;
        guard_unit("close", || {
            ran = true;
            panic!("in close")
        });
        assert!(ran);
    }
}
