//! Judging raw entry paths: what tar's own unpack would silently "fix" we refuse.

/// Longest accepted path, and longest single component (the usual NAME_MAX).
const MAX_PATH_BYTES: usize = 1024;
const MAX_COMPONENT_BYTES: usize = 255;

/// Normalizes a raw archive path into a '/'-separated relative path.
///
/// Returns `Ok(None)` for the archive root ("." or "./"), which only a directory may name.
/// A leading "./" and, for directories, one trailing "/" are dropped; anything else odd is an
/// error whose text says why.
pub(crate) fn normalize(raw: &[u8], is_dir: bool) -> Result<Option<String>, &'static str> {
    let path = std::str::from_utf8(raw).map_err(|_| "path is not valid UTF-8")?;
    if path.is_empty() {
        return Err("empty path");
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err("path contains a backslash or a control character");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    let path = match path.strip_suffix('/') {
        Some(stripped) if is_dir => stripped,
        Some(_) => return Err("a file path must not end with '/'"),
        None => path,
    };
    let path = match path {
        "." => {
            return if is_dir {
                Ok(None)
            } else {
                Err("'.' is not a file")
            };
        }
        _ => path.strip_prefix("./").unwrap_or(path),
    };
    if path.len() > MAX_PATH_BYTES {
        return Err("path is longer than 1024 bytes");
    }
    let components: Vec<&str> = path.split('/').collect();
    // `..` first: it is the most telling reason when several apply.
    if components.contains(&"..") {
        return Err("path contains a '..' component");
    }
    for component in &components {
        match *component {
            "" => return Err("path contains an empty component"),
            "." => return Err("path contains a '.' component"),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return Err("a path component is longer than 255 bytes");
            }
            _ => {}
        }
    }
    Ok(Some(path.to_owned()))
}

/// Every proper ancestor of a normalized path, shortest first ("a/b/c" → "a", "a/b").
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(raw: &str) -> Result<Option<String>, &'static str> {
        normalize(raw.as_bytes(), false)
    }

    #[test]
    fn plain_and_dot_slash_paths_normalize() {
        assert_eq!(file("index.js"), Ok(Some("index.js".into())));
        assert_eq!(file("./src/a.py"), Ok(Some("src/a.py".into())));
        assert_eq!(normalize(b"./lib/", true), Ok(Some("lib".into())));
        assert_eq!(normalize(b"./", true), Ok(None));
        assert_eq!(normalize(b".", true), Ok(None));
    }

    #[test]
    fn dangerous_paths_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "a/..",
            "/etc/x",
            "a//b",
            "a/./b",
            "././a",
            "a\\b",
            "a\nb",
            "",
            ".",
            "dir/",
        ] {
            assert!(file(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(normalize(b"\xff\xfe", false).is_err());
        assert!(file(&"a".repeat(256)).is_err());
        assert!(file(&["a"; 600].join("/")).is_err());
    }

    #[test]
    fn ancestors_are_listed_shortest_first() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
    }
}
