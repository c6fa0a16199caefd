//! "Did you mean …?": the candidate a misspelt name was most likely meant to be.

/// The candidate closest to `word` by edit distance (ignoring case), if it is close enough to
/// be a typo of it: at most a third of the longer name's length, and always up to 2 edits.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word_l = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&word_l, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 3).max(2))
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn close_names_are_suggested_and_far_ones_not() {
        let keys = ["keep_daily", "keep_weekly", "issue_date"];
        assert_eq!(nearest("keep_dialy", &keys), Some("keep_daily"));
        assert_eq!(nearest("ISSUE_DATE", &keys), Some("issue_date"));
        assert_eq!(nearest("colour", &keys), None);
    }
}
