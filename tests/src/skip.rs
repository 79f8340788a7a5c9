//! Skipping a test out loud: `SKIPPED: <test>: <reason>` on stderr, so a run that could not test
//! something says so instead of passing in silence.

/// The name of the running test: libtest names each test's thread after it; when the test runs
/// on the main thread (one test thread), `fallback` (the enclosing function, from
/// [`crate::test_name!`]).
pub fn current_test(fallback: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// Prints `SKIPPED: <test>: <reason>` to stderr. `fallback` names the test when the thread does
/// not ([`current_test`]). Use [`crate::skip!`] in a test; this is for helpers that decide a
/// test cannot run and return that to it.
pub fn skipped(fallback: &str, reason: &str) {
    eprintln!("SKIPPED: {}: {reason}", current_test(fallback));
}

/// The last segment of a function's type name, closures left out: `a::b::f::here` -> `f`.
pub fn function_name(type_name: &'static str) -> &'static str {
    type_name
        .rsplit("::")
        .find(|s| *s != "{{closure}}" && *s != "here")
        .unwrap_or(type_name)
}

/// The name of the function this is written in (the test, when written in one).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        $crate::skip::function_name(::std::any::type_name_of_val(&here))
    }};
}

/// Skips the current test: prints `SKIPPED: <test>: <reason>` (format arguments allowed) to
/// stderr and returns from the test.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {{
        $crate::skip::skipped($crate::test_name!(), &::std::format!($($reason)+));
        return;
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_enclosing_function() {
        assert_eq!(crate::test_name!(), "names_the_enclosing_function");
        let in_closure = || crate::test_name!();
        assert_eq!(in_closure(), "names_the_enclosing_function");
    }

    #[test]
    fn the_test_thread_names_the_test() {
        // libtest runs this test on a thread named after it (unless one thread runs them all,
        // when the fallback is used).
        let name = current_test("fallback");
        assert!(
            name.ends_with("the_test_thread_names_the_test") || name == "fallback",
            "{name}"
        );
    }
}
