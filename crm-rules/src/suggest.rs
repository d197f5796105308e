//! "Did you mean …?": the known name closest to a misspelt one (`strsim`).

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = match word.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        n => n / 4 + 1,
    };
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let lower = strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase());
            (
                lower,
                std::cmp::Reverse((strsim::jaro_winkler(word, c) * 1000.0) as u32),
                c,
            )
        })
        .filter(|(d, _, _)| *d <= allowed)
        .min()
        .map(|(_, _, c)| c)
}

/// ` (did you mean `x`?)`, or nothing when no candidate is close.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_likely_name_and_nothing_far_off() {
        let fields = ["revenue", "title", "owner", "to_name", "from_name"];
        assert_eq!(closest("revenu", fields), Some("revenue"));
        assert_eq!(closest("to_nme", fields), Some("to_name"));
        assert_eq!(closest("Title", fields), Some("title"));
        assert_eq!(closest("probability", fields), None);
        assert_eq!(did_you_mean("zzz", fields), "");
        assert_eq!(did_you_mean("ownr", fields), " (did you mean `owner`?)");
    }
}
