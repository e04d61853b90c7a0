//! Redaction of credentials that can hide in URLs (`https://user:password@host/`).
//!
//! A server URL may carry userinfo (a proxy or a misconfigured `KSC_API_SERVER`), and URLs end up
//! in log lines, in reqwest's error texts and in configuration errors. The call sites avoid
//! printing URLs, but a missed one must not leak a password, so the logger and the crate's
//! `Error` messages pass every text through [`userinfo`] as well.

/// Replaces the userinfo of every `scheme://userinfo@host` in `text` with `***`.
///
/// Works on free text (an error chain, a log line), not just on one URL; text without a URL is
/// returned unchanged.
pub fn userinfo(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first path, query or fragment delimiter, or at a character
        // that cannot be in a URL written into prose (space, quote, bracket).
        let end = tail
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '(' | ')' | '`'
                ) || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `url` as text with its userinfo replaced by `***` (for logs and errors).
pub fn url(url: &reqwest::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut u = url.clone();
    // Setting these only fails for URLs that cannot have userinfo, which then have none.
    let _ = u.set_password(None);
    let _ = u.set_username("***");
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_text_is_hidden() {
        assert_eq!(
            userinfo("GET https://user:PW@127.0.0.1:8200/api/keys failed"),
            "GET https://***@127.0.0.1:8200/api/keys failed"
        );
        assert_eq!(
            userinfo("error sending request for url (https://a:b@h/x) and \"http://u@h\""),
            "error sending request for url (https://***@h/x) and \"http://***@h\""
        );
        // An @ after the authority (in a path or query) is not userinfo.
        assert_eq!(userinfo("https://h/a@b?c=d@e"), "https://h/a@b?c=d@e");
        assert_eq!(userinfo("p@ss no url"), "p@ss no url");
        assert_eq!(userinfo("https://u:p@ss@h:1"), "https://***@h:1");
        assert_eq!(userinfo("trailing ://"), "trailing ://");
    }

    #[test]
    fn url_userinfo_is_hidden() {
        let u = reqwest::Url::parse("https://user:PW@ks:8200/api").unwrap();
        assert_eq!(url(&u), "https://***@ks:8200/api");
        let u = reqwest::Url::parse("https://ks:8200/api").unwrap();
        assert_eq!(url(&u), "https://ks:8200/api");
    }
}
