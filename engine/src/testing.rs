//! Helpers for tests of every crate of the workspace.

/// Is `CI` set (non-empty, not `false` or `0`)? Then tests treat a missing service as a
/// failure: a CI run that skipped the PostgreSQL or browser tests would pass without having
/// tested them.
pub fn ci_is_set() -> bool {
    ci_value_is_set(std::env::var("CI").ok().as_deref())
}

fn ci_value_is_set(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") => false,
        Some(v) => !v.eq_ignore_ascii_case("false") && v != "0",
    }
}

/// Called by a test that cannot run because a service it needs (PostgreSQL, a browser, a
/// tool) is missing, just before it returns: prints `message` (`skipped: …`) so that the
/// skip shows; when `CI` is set, fails the test instead with the same message.
///
/// # Panics
///
/// When `CI` is set — that is how a test fails.
pub fn skip_for_missing_service(message: &str) {
    if ci_is_set() {
        panic!("{message} (CI is set: a missing service is a failure)");
    }
    eprintln!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_set_unless_empty_false_or_zero() {
        for (value, set) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("FALSE"), false),
            (Some("0"), false),
            (Some("1"), true),
            (Some("true"), true),
            (Some("woodpecker"), true),
        ] {
            assert_eq!(ci_value_is_set(value), set, "{value:?}");
        }
    }
}
