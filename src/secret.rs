//! age secret keys where only public material belongs: recognised, so the mistake can be
//! named without repeating the key, and removed from any text ivault prints or records
//! (stderr ends up in the system journal).

use std::borrow::Cow;

/// How every age secret key begins (Bech32, so it may also be written in lower case).
const PREFIX: &[u8] = b"age-secret-key-";

/// What a secret key is replaced with in text that is printed or recorded.
pub const REDACTED: &str = "[secret key not shown]";

/// Whether `s` holds an age secret key (`AGE-SECRET-KEY-…` in any case) anywhere.
pub fn holds_secret_key(s: &str) -> bool {
    find(s.as_bytes(), 0).is_some()
}

/// `s` with each age secret key (the prefix and the key body after it) replaced by
/// [`REDACTED`].
pub fn redact(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let Some(mut start) = find(bytes, 0) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    loop {
        out.push_str(&s[copied..start]);
        out.push_str(REDACTED);
        // The prefix and the body are ASCII, so `copied` stays on a character boundary.
        copied = start + PREFIX.len();
        while bytes.get(copied).is_some_and(u8::is_ascii_alphanumeric) {
            copied += 1;
        }
        match find(bytes, copied) {
            Some(next) => start = next,
            None => break,
        }
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

/// Whether `data` is an age-encrypted file, binary or armored: a passphrase-protected
/// identity, say, which is no list of recipients.
pub fn is_age_encrypted(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    let data = &data[start..];
    data.starts_with(b"age-encryption.org/")
        || data.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
}

/// Byte offset of the first secret key prefix at or after `from`.
fn find(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(PREFIX.len())
        .position(|w| w.eq_ignore_ascii_case(PREFIX))
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1QYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQSZQGPQYQ";

    #[test]
    fn keys_in_any_case_are_found_and_replaced_with_their_body() {
        assert!(holds_secret_key(KEY));
        assert!(holds_secret_key(&format!("x {}", KEY.to_ascii_lowercase())));
        assert!(!holds_secret_key("age1qyqszqgpqyqszqgp"));
        let text = format!("\"{KEY}\" and {},", KEY.to_ascii_lowercase());
        assert_eq!(redact(&text), format!("\"{REDACTED}\" and {REDACTED},"));
        assert_eq!(redact("北京 age1x"), "北京 age1x");
        assert_eq!(redact("北京 AGE-SECRET-KEY-"), format!("北京 {REDACTED}"));
    }

    #[test]
    fn age_encrypted_files_are_recognised_binary_or_armored() {
        assert!(is_age_encrypted(b"age-encryption.org/v1\n-> scrypt x 18\n"));
        assert!(is_age_encrypted(
            b"\n-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"
        ));
        assert!(!is_age_encrypted(b"# keys\nage1qyqszqgpqyqszqgp\n"));
    }
}
