//! Keyset pages: fetch one row more than the page holds to know whether another page follows.

/// Cuts `rows` (fetched with `limit(page_size + 1)`) to the page and returns the token of the
/// next page: the cursor of its last row, or empty when this is the last page.
pub fn next_page<T>(rows: &mut Vec<T>, page_size: u64, cursor: impl Fn(&T) -> String) -> String {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        rows.last().map(cursor).unwrap_or_default()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn a_full_page_names_its_last_row_and_a_short_one_ends() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), "2");
        assert_eq!(rows, vec![1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), "");
        assert_eq!(rows, vec![1, 2]);
    }
}
