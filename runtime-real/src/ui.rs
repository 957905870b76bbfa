//! The agent page: `/ui` (and `/`, which redirects there) serves a live view of this
//! node — members, overlay views, the global graph, the route tree, the KV and a few
//! metrics — drawn in the browser from the admin API's own JSON endpoints, `/metrics`
//! and the KV watch. The page is three files in `runtime-real/ui/`, built into the
//! binary, so it fetches nothing from anywhere else.
//!
//! The routes sit behind [`admin_guard`](crate::admin_guard) like every other: the page
//! opens only where the API answers, and only makes GETs, so it needs no exception to the
//! Host, Origin or token checks. Answers say `Cache-Control: no-cache` with an ETag (the
//! files change with the binary, not with time, so a revalidation is a 304), and a
//! Content-Security-Policy that lets the page load and connect to its own origin only.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

/// One file of the page.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../ui/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_str!("../ui/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    body: include_str!("../ui/style.css"),
    content_type: "text/css; charset=utf-8",
};

/// Scripts, styles and requests from this origin only; no frames, forms or plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The page's routes (the admin router adds them and guards them with the rest).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui") }))
        .route("/ui", get(|h: HeaderMap| async move { serve(&INDEX, &h) }))
        .route(
            "/ui/app.js",
            get(|h: HeaderMap| async move { serve(&SCRIPT, &h) }),
        )
        .route(
            "/ui/style.css",
            get(|h: HeaderMap| async move { serve(&STYLE, &h) }),
        )
}

impl Asset {
    /// A strong validator: the first 128 bits of the body's SHA-256, quoted.
    fn etag(&self) -> String {
        let digest = Sha256::digest(self.body.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }
}

/// `asset`, or 304 when the request's `If-None-Match` names its ETag already.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag();
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    let set = |h: &mut HeaderMap, name, value: &str| {
        h.insert(
            name,
            HeaderValue::from_str(value).expect("ASCII header value"),
        );
    };
    set(headers, header::ETAG, &etag);
    set(headers, header::CACHE_CONTROL, "no-cache");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CONTENT_SECURITY_POLICY, CSP);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(r: &Response, name: header::HeaderName) -> &str {
        r.headers().get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn each_file_goes_out_with_its_type_and_the_page_policy() {
        for (asset, ct) in [
            (&INDEX, "text/html"),
            (&SCRIPT, "text/javascript"),
            (&STYLE, "text/css"),
        ] {
            let r = serve(asset, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK);
            assert!(header(&r, header::CONTENT_TYPE).starts_with(ct));
            assert_eq!(header(&r, header::CACHE_CONTROL), "no-cache");
            assert_eq!(header(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            assert!(header(&r, header::CONTENT_SECURITY_POLICY).contains("connect-src 'self'"));
        }
    }

    #[test]
    fn a_revalidation_with_the_current_etag_is_a_304_and_a_stale_one_is_not() {
        let etag = INDEX.etag();
        assert_eq!(etag.len(), 34);
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            format!("\"0\", {etag}").parse().unwrap(),
        );
        let r = serve(&INDEX, &h);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&r, header::ETAG), etag);
        h.insert(header::IF_NONE_MATCH, "\"stale\"".parse().unwrap());
        assert_eq!(serve(&INDEX, &h).status(), StatusCode::OK);
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        // The CSP allows no inline script or style: every script and sheet is a file here.
        assert!(INDEX.body.contains(r#"<script src="/ui/app.js""#));
        assert!(INDEX.body.contains(r#"href="/ui/style.css""#));
        assert!(!INDEX.body.contains("<style"));
        // The one URL allowed is SVG's namespace name, which is never fetched.
        for text in [INDEX.body, SCRIPT.body, STYLE.body] {
            let text = text.replace("http://www.w3.org/2000/svg", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("url(") && !text.contains("@import"));
        }
    }
}
