//! Link targets: what `POST /urls` accepts, and how a stored IRI becomes a valid `Location`.

/// A trimmed, validated `http`/`https` target, stored exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl(String);

impl TargetUrl {
    /// Accepts `http://host...` or `https://host...` (scheme case-insensitive) with a non-empty
    /// host, no control characters anywhere and no white space in the host, whose host and
    /// port are valid as a browser reads them (the `url` crate's WHATWG parser: no forbidden
    /// host characters, IPv6 literals well formed, port at most 65535). The caller trims.
    /// Every path that stores a target (API, UI form, CSV import) goes through here.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.chars().any(char::is_control) {
            return None;
        }
        let (_, rest) = split_scheme(raw)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = if host_port.starts_with('[') {
            host_port
                .split_once(']')
                .map(|(h, _)| h.trim_start_matches('['))?
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        if host.is_empty() || authority.chars().any(char::is_whitespace) {
            return None;
        }
        let parsed = ::url::Url::parse(raw).ok()?;
        let web = matches!(parsed.scheme(), "http" | "https");
        (web && parsed.host_str().is_some_and(|h| !h.is_empty())).then(|| Self(raw.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    #[must_use]
    pub fn into_string(self) -> String {
        self.0
    }
}

fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = raw.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        .then_some((scheme, rest))
}

/// Bytes kept as they are in a `Location`: RFC 3986 unreserved, reserved and `%`.
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

/// Makes a stored IRI a valid URI for the `Location` header: the host in IDNA (punycode), and
/// every other byte outside the URI character set percent-encoded with uppercase hex
/// (`%E3%83%91`). A target that is already a plain ASCII URI is returned unchanged.
#[must_use]
pub fn to_location(target: &str) -> String {
    if target.bytes().all(keep) {
        return target.to_owned();
    }
    let Some((scheme, rest)) = split_scheme(target) else {
        return percent_encode(target);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    // The host ends before a trailing `:port`; an IPv6 literal is ASCII and kept whole.
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if !host_port.starts_with('[') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    let ascii_host = if host.is_ascii() {
        host.to_owned()
    } else {
        idna::domain_to_ascii(host).unwrap_or_else(|_| percent_encode(host))
    };
    let mut out = String::with_capacity(target.len() * 2);
    out.push_str(scheme);
    out.push_str("://");
    if let Some(userinfo) = userinfo {
        out.push_str(&percent_encode(userinfo));
        out.push('@');
    }
    out.push_str(&ascii_host);
    out.push_str(&host_port[host.len()..]);
    out.push_str(&percent_encode(tail));
    out
}

/// Adds `params` to the query string of a `Location` (from [`to_location`]), after the
/// parameters already there, which keep their bytes; a parameter of the same name already
/// there is replaced (the link's value wins). The `url` crate writes the pairs
/// (`application/x-www-form-urlencoded`) and keeps a fragment after them.
#[must_use]
pub fn with_query_params(location: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return location.to_owned();
    }
    let Ok(mut url) = ::url::Url::parse(location) else {
        return location.to_owned();
    };
    let ours = |name: &str| params.iter().any(|(p, _)| *p == name);
    if url.query_pairs().any(|(name, _)| ours(&name)) {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| !ours(name))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

fn percent_encode(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_appended_after_the_existing_query() {
        let utm = [("utm_source", "news letter"), ("utm_medium", "e&mail")];
        assert_eq!(
            with_query_params("https://x.example/p?a=b%20c&d", &utm),
            "https://x.example/p?a=b%20c&d&utm_source=news+letter&utm_medium=e%26mail"
        );
        assert_eq!(
            with_query_params("https://x.example/p#frag", &utm[..1]),
            "https://x.example/p?utm_source=news+letter#frag"
        );
        assert_eq!(
            with_query_params("https://x.example/p?", &utm[..1]),
            "https://x.example/p?utm_source=news+letter"
        );
        assert_eq!(
            with_query_params("https://x.example/?utm_source=old&a=1", &utm[..1]),
            "https://x.example/?a=1&utm_source=news+letter"
        );
        assert_eq!(
            with_query_params("https://x.example/p?a=1", &[]),
            "https://x.example/p?a=1"
        );
    }

    #[test]
    fn accepts_http_and_https_with_a_host() {
        for ok in [
            "http://x.example",
            "HTTPS://x.example/a?b=c",
            "https://user@host:8080/p",
            "http://[::1]:80/",
        ] {
            assert!(TargetUrl::parse(ok).is_some(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "http:/x.example",
            "https:x.example",
            "//x.example",
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://x.example",
            "http://",
            "http://:80/",
            "http://exa mple.com/",
            "http://x.example/\r\nSet-Cookie: a",
            "http://x.example/\u{0}",
            "http://x.example:65536/",
            "http://x.example:8o/",
            "http://[::1/",
            "http://[zz::1]/",
            "http://x<y.example/",
            "https://x|y.example/",
        ] {
            assert!(TargetUrl::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn iris_become_valid_locations() {
        assert_eq!(
            to_location("https://example.com/a?b=c"),
            "https://example.com/a?b=c"
        );
        assert_eq!(
            to_location("https://example.com/パ"),
            "https://example.com/%E3%83%91"
        );
        assert_eq!(
            to_location("https://bücher.de/ä?q=ü"),
            "https://xn--bcher-kva.de/%C3%A4?q=%C3%BC"
        );
        assert_eq!(
            to_location("https://example.com:8443/a b"),
            "https://example.com:8443/a%20b"
        );
    }
}
