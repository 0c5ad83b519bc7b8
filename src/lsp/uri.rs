//! `file://` URIs to paths and back: what the protocol names documents by.

use std::path::{Path, PathBuf};

/// Escapes every byte of `text` outside the unreserved set and `/`.
pub fn encode_path(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn from_path(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", encode_path(&abs.to_string_lossy()))
}

/// The path of a `file://` URI; `None` for another scheme or a bad escape.
pub fn to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    // `file://host/path` names another machine's file.
    let rest = if rest.starts_with('/') {
        rest
    } else {
        rest.strip_prefix("localhost")?
    };
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    Some(PathBuf::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_paths_round_trip() {
        let p = Path::new("/w/a b/é#1.yaml");
        let u = from_path(p);
        assert_eq!(u, "file:///w/a%20b/%C3%A9%231.yaml");
        assert_eq!(to_path(&u).as_deref(), Some(p));
        assert_eq!(
            to_path("file://localhost/x").as_deref(),
            Some(Path::new("/x"))
        );
        assert_eq!(to_path("file://other/x"), None);
        assert_eq!(to_path("untitled:1"), None);
        assert_eq!(to_path("file:///%zz"), None);
    }
}
