//! The HTML the api writes: the home page, the `/shorten-ui` fragments and the body of a 302,
//! all tera templates embedded in the binary. Every value is escaped by tera's autoescaping,
//! never by hand, with the contract's escape function: `&`, `<`, `>` and `"` only
//! (apostrophes and slashes stay as they are, so the fragments read exactly as the contract
//! writes them; tera's default escaper would also rewrite `'` and `/`).

use tera::{Context, Tera};

/// Escapes `&`, `<`, `>` and `"`: the escape function of every template.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

pub const INDEX: &str = "index.html";
pub const SHORTEN_SUCCESS: &str = "shorten_success.html";
pub const SHORTEN_ERROR: &str = "shorten_error.html";
pub const REDIRECT: &str = "redirect.html";
pub const LINK: &str = "link.html";
pub const QUEUES: &str = "queues.html";
pub const QUEUES_TABLE: &str = "queues_table.html";
pub const PASSWORD: &str = "password.html";

/// The compiled templates, autoescaped.
pub fn templates() -> anyhow::Result<Tera> {
    let mut tera = Tera::default();
    tera.add_raw_templates([
        (INDEX, include_str!("../templates/index.html")),
        (
            SHORTEN_SUCCESS,
            include_str!("../templates/shorten_success.html"),
        ),
        (
            SHORTEN_ERROR,
            include_str!("../templates/shorten_error.html"),
        ),
        (REDIRECT, include_str!("../templates/redirect.html")),
        (LINK, include_str!("../templates/link.html")),
        (QUEUES, include_str!("../templates/queues.html")),
        (QUEUES_TABLE, include_str!("../templates/queues_table.html")),
        (PASSWORD, include_str!("../templates/password.html")),
    ])?;
    tera.autoescape_on(vec![".html"]);
    tera.set_escape_fn(escape);
    Ok(tera)
}

/// The body of a 302 to `location`: "Redirecting..." and a link to the target.
pub fn redirect_body(tera: &Tera, location: &str) -> tera::Result<String> {
    let mut context = Context::new();
    context.insert("location", location);
    tera.render(REDIRECT, &context)
}

/// The form of a password link `code`, with `error` (a wrong password, a spent budget) above.
pub fn password_page(tera: &Tera, code: &str, error: Option<&str>) -> tera::Result<String> {
    let mut context = Context::new();
    context.insert("code", code);
    context.insert("error", &error);
    tera.render(PASSWORD, &context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_by_the_templates_for_exactly_four_characters() {
        let tera = templates().unwrap();
        let mut context = Context::new();
        context.insert("message", "<script>alert('x & y')</script> \"/\"");
        assert_eq!(
            tera.render(SHORTEN_ERROR, &context).unwrap(),
            "<div id=\"message\" class=\"error\">&lt;script&gt;alert('x &amp; y')&lt;/script&gt; &quot;/&quot;</div>"
        );
        let mut context = Context::new();
        context.insert("host", "http://h\"><script>");
        context.insert("code", "abc'/");
        context.insert("id", &7);
        assert_eq!(
            tera.render(SHORTEN_SUCCESS, &context).unwrap(),
            "<div id=\"message\" class=\"success\">Short URL ready!<br><br><strong>Redirect:</strong> \
             <a href=\"http://h&quot;&gt;&lt;script&gt;/r/abc'/\" target=\"_blank\">http://h&quot;&gt;&lt;script&gt;/r/abc'/</a><br><strong>Payload:</strong> \
             <a href=\"http://h&quot;&gt;&lt;script&gt;/urls/7\" target=\"_blank\">http://h&quot;&gt;&lt;script&gt;/urls/7</a></div>"
        );
    }

    #[test]
    fn the_redirect_body_links_the_escaped_target() {
        let tera = templates().unwrap();
        assert_eq!(
            redirect_body(&tera, "https://x.example/?a=1&b=\"<t>\"").unwrap(),
            "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n\
             <p>You should be redirected automatically to the target URL: \
             <a href=\"https://x.example/?a=1&amp;b=&quot;&lt;t&gt;&quot;\">https://x.example/?a=1&amp;b=&quot;&lt;t&gt;&quot;</a>. \
             If not, click the link.\n"
        );
    }
}
