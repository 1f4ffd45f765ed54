//! "Did you mean …?": the one place that decides which known name a mistyped one was meant
//! to be, for every message of the engine, the services, the API and the command line.

/// The candidate closest to `word`, if it is plausibly a typo of it.
///
/// Jaro–Winkler similarity (strsim), case-insensitive, at least 0.8: it rewards a shared
/// beginning, which is how names are mistyped (`actoin`, `hello-webhok`), and keeps
/// unrelated short words apart. A candidate equal but for case always qualifies.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, &c.to_lowercase())))
        .filter(|(c, score)| *score >= THRESHOLD || c.eq_ignore_ascii_case(word))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// Below this, a suggestion is more often wrong than helpful.
const THRESHOLD: f64 = 0.8;

/// "did you mean `x`?" for the closest candidate, if one is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(question)
}

/// "did you mean `x`?" for a candidate found earlier with [`closest`].
pub fn question(candidate: &str) -> String {
    format!("did you mean `{candidate}`?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos_only() {
        assert_eq!(
            closest("actoin", ["action", "input", "next"]),
            Some("action")
        );
        assert_eq!(closest("zzz", ["action", "input", "next"]), None);
        assert_eq!(closest("CTX", ["ctx"]), Some("ctx"));
        assert_eq!(
            did_you_mean("hello-webhok", ["hello-webhook", "other"]).as_deref(),
            Some("did you mean `hello-webhook`?")
        );
    }
}
