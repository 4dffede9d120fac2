//! Rich text written by one user and shown as HTML to others (task comments, event and
//! task descriptions): only harmless tags and attributes stay (ammonia), and nothing that
//! loads by itself from elsewhere — an `<img>` pointing at a remote host tells its owner
//! who read the text and when (a tracking pixel), so images go; links stay (they load only
//! when followed) with web, mail, telephone and SIP addresses only.

use std::collections::HashSet;
use std::sync::LazyLock;

static SANITISER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["img"])
        .url_schemes(HashSet::from(["http", "https", "mailto", "tel", "sip"]));
    b
});

/// `text` as HTML safe to show: a text without markup (no `<`) stays exactly as written,
/// since nothing in it can become an element; anything else is cleaned.
pub fn sanitise(text: &str) -> String {
    if text.contains('<') {
        SANITISER.clean(text).to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise;

    #[test]
    fn no_script_and_no_remote_image_survive() {
        assert_eq!(
            sanitise("<p>Счёт <b>оплачен</b><script>alert(1)</script></p>"),
            "<p>Счёт <b>оплачен</b></p>"
        );
        assert_eq!(
            sanitise("<p>Hi<img src=\"http://tracker.example/p.gif\"></p>"),
            "<p>Hi</p>"
        );
        assert_eq!(
            sanitise("<a href=\"ssh://host\">x</a> <a href=\"https://example.com\">y</a>"),
            "<a rel=\"noopener noreferrer\">x</a> <a href=\"https://example.com\" rel=\"noopener noreferrer\">y</a>"
        );
        assert_eq!(sanitise("A & B, 1 > 0"), "A & B, 1 > 0");
    }
}
