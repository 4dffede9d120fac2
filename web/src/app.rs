//! The web app, embedded at build time (see build.rs): hashed assets under /assets
//! cached for good and sent gzip- or brotli-compressed when the browser takes it, and
//! index.html for every other page path, so client routes survive a reload.

use crate::Problem;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

pub struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    pub raw: &'static [u8],
    pub gzip: Option<&'static [u8]>,
    pub brotli: Option<&'static [u8]>,
}

pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// What the browser accepts of `coding` (a q of 0 refuses it).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p == "q=0.0");
            name.eq_ignore_ascii_case(coding) && !refused
        })
}

fn send(asset: &Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let (body, coding) = match (asset.brotli, asset.gzip) {
        (Some(br), _) if accepts(headers, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(headers, "gzip") => (gz, Some("gzip")),
        _ => (asset.raw, None),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.mime),
            (header::CACHE_CONTROL, cache),
            (header::VARY, "accept-encoding"),
        ],
        body,
    )
        .into_response();
    if let Some(coding) = coding {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, coding.parse().expect("coding"));
    }
    response
}

/// Every request the API does not route: an asset, the page, or 404 for API paths.
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let page_method = method == Method::GET || method == Method::HEAD;
    if path.starts_with("/api/") || path == "/sip" || !page_method {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("no route {path}"),
        )
        .into_response();
    }
    if let Some(asset) = find(path).filter(|_| path.starts_with("/assets/")) {
        return send(asset, &headers, "public, max-age=31536000, immutable");
    }
    if path.starts_with("/assets/") {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    match find("/index.html") {
        Some(page) => send(page, &headers, "no-cache"),
        None => (
            StatusCode::NOT_FOUND,
            "built without the web app (KOLOKOL_UI_SKIP)",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_embeds_the_page_and_its_hashed_compressed_assets() {
        let page = std::str::from_utf8(find("/index.html").expect("index").raw).unwrap();
        let script = page
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a script in index.html");
        let asset = find(script).unwrap_or_else(|| panic!("{script} is not embedded"));
        assert!(script.starts_with("/assets/") && asset.mime.starts_with("text/javascript"));
        assert!(
            asset.brotli.is_some() && asset.gzip.is_some(),
            "compressed copies"
        );
    }

    #[test]
    fn a_coding_with_q_zero_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, "gzip;q=0, br".parse().unwrap());
        assert!(accepts(&h, "br") && !accepts(&h, "gzip"));
        h.insert(header::ACCEPT_ENCODING, "identity".parse().unwrap());
        assert!(!accepts(&h, "br"));
    }
}
