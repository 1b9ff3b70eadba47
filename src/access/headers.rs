//! Response headers that keep stored content from running in r2d1's origin.
//!
//! Files and memories are whatever their writers sent: an app file named `index.html` with a
//! `<script>`, or an SVG with one, served from the API's origin would run with the dashboard's
//! cookies-free but same-origin powers (it could read `sessionStorage`'s key and call the API).
//! So every download says `X-Content-Type-Options: nosniff` (no guessing a script out of
//! `text/plain`), and the types a browser would execute also get `Content-Security-Policy:
//! sandbox` (a unique origin, no script) and `Content-Disposition: attachment` (saved, not
//! rendered). The dashboard's own headers are in `web/_headers` ([`DASHBOARD_CSP`]).

/// The dashboard's policy: no inline script, nothing from elsewhere, never framed.
pub const DASHBOARD_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether a browser would run content of this type (HTML, SVG, XML, JavaScript).
pub fn is_active(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/xslt+xml"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "text/ecmascript"
            | "text/jscript"
            | "application/wasm"
    ) || essence.ends_with("+xml")
        // Without a type a browser sniffs; nosniff stops most of it, sandbox the rest.
        || essence.is_empty()
}

/// The headers a download of `content_type` carries; `filename` is the attachment's name.
pub fn download_headers(content_type: &str, filename: &str) -> Vec<(&'static str, String)> {
    let mut out = vec![("X-Content-Type-Options", "nosniff".to_string())];
    if is_active(content_type) {
        out.push(("Content-Security-Policy", "sandbox".to_string()));
        out.push(("Content-Disposition", format!("attachment; filename=\"{}\"", safe_filename(filename))));
    }
    out
}

/// A filename safe inside a quoted header value: the last path segment, printable ASCII only.
fn safe_filename(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let cleaned: String = last.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '_' }).take(120).collect();
    if cleaned.is_empty() {
        "download".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_types_are_sandboxed_and_saved() {
        for t in
            ["text/html; charset=utf-8", "image/svg+xml", "application/xml", "text/javascript", "application/atom+xml", "TEXT/HTML", ""]
        {
            assert!(is_active(t), "{t}");
            let h = download_headers(t, "src/index.html");
            assert!(h.contains(&("Content-Security-Policy", "sandbox".into())), "{t}");
            assert!(h.contains(&("Content-Disposition", "attachment; filename=\"index.html\"".into())), "{t}");
        }
        for t in ["text/plain; charset=utf-8", "application/json", "image/png", "application/gzip", "text/css", "text/csv"] {
            assert!(!is_active(t), "{t}");
            assert_eq!(download_headers(t, "x"), vec![("X-Content-Type-Options", "nosniff".to_string())]);
        }
    }

    #[test]
    fn filenames_cannot_break_the_header() {
        assert_eq!(safe_filename("a/b/evil\"; x=y.svg"), "evil_;_x=y.svg");
        assert_eq!(safe_filename("dir/"), "download");
        assert_eq!(safe_filename("naïve.html"), "na_ve.html");
    }

    #[test]
    fn the_dashboard_headers_file_carries_the_policy() {
        let file = include_str!("../../web/_headers");
        assert!(file.contains(&format!("Content-Security-Policy: {DASHBOARD_CSP}")), "web/_headers and DASHBOARD_CSP differ");
        assert!(file.contains("Referrer-Policy: no-referrer"));
        assert!(!DASHBOARD_CSP.contains("unsafe-inline"));
        assert!(DASHBOARD_CSP.contains("frame-ancestors 'none'"));
    }
}
