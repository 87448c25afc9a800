//! The web app as the server serves it: the page to browsers, JSON to everyone else, the built
//! files with their types, caching, validators and compression.

use std::io::Read;

use duet_tests::{Backend, TestServer, on_both_databases};
use reqwest::StatusCode;
use serde_json::Value;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The `/assets/…` files the page names.
fn assets_named_in(page: &str) -> Vec<String> {
    page.split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

async fn browsers_get_the_app_and_programs_get_json(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    // Programs: curl and the prototype's clients send */*, or nothing.
    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut request = client.get(server.url("/"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let response = request.send().await.expect("answers");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "vary").contains("Accept"), "{accept:?}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["service"], "duet", "{accept:?}");
    }
    // Browsers, at / and at a room's address.
    let room = server.create_room(serde_json::json!({})).await;
    let mut pages = Vec::new();
    for path in ["/".to_owned(), format!("/r/{room}")] {
        let response = client
            .get(server.url(&path))
            .header("accept", BROWSER_ACCEPT)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            header(&response, "content-type").starts_with("text/html"),
            "{path}"
        );
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert!(!header(&response, "etag").is_empty());
        pages.push(response.text().await.expect("a page"));
    }
    assert_eq!(pages[0], pages[1], "one page for every app route");
    assert!(pages[0].to_ascii_lowercase().starts_with("<!doctype html>"));
    server.stop().await;
}

async fn built_files_are_cached_validated_and_compressed(backend: Backend) {
    let Some(database) = backend.database().await else {
        return;
    };
    let server = TestServer::on(&database).await;
    let client = reqwest::Client::new();
    let page = client
        .get(server.url("/"))
        .header("accept", BROWSER_ACCEPT)
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("a page");
    let assets = assets_named_in(&page);
    assert!(
        assets.iter().any(|asset| asset.ends_with(".js")),
        "the page names its script: {page}"
    );
    for asset in &assets {
        let plain = client.get(server.url(asset)).send().await.expect("answers");
        assert_eq!(plain.status(), StatusCode::OK, "{asset}");
        assert_eq!(
            header(&plain, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&plain, "x-content-type-options"), "nosniff");
        let expected_type = if asset.ends_with(".js") {
            "text/javascript"
        } else if asset.ends_with(".css") {
            "text/css"
        } else {
            ""
        };
        assert!(
            header(&plain, "content-type").starts_with(expected_type),
            "{asset}: {}",
            header(&plain, "content-type")
        );
        let etag = header(&plain, "etag").to_owned();
        assert!(header(&plain, "content-encoding").is_empty());
        let raw = plain.bytes().await.expect("a body");
        // Gzipped when asked, and the same bytes once unpacked.
        let packed = client
            .get(server.url(asset))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("answers");
        if raw.len() >= 1024 && !expected_type.is_empty() {
            assert_eq!(header(&packed, "content-encoding"), "gzip", "{asset}");
            let bytes = packed.bytes().await.expect("a body");
            assert!(bytes.len() < raw.len());
            let mut unpacked = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut unpacked)
                .expect("gzip");
            assert_eq!(unpacked, raw.to_vec(), "{asset}");
        }
        // Revalidated without a body.
        let again = client
            .get(server.url(asset))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("answers");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{asset}");
    }
    // What was never built is a JSON 404.
    let missing = client
        .get(server.url("/assets/nothing-here.js"))
        .send()
        .await
        .expect("answers");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_found");
    server.stop().await;
}

on_both_databases!(
    browsers_get_the_app_and_programs_get_json,
    built_files_are_cached_validated_and_compressed,
);
