//! Issue 11, more link features: QR codes of short URLs, bot flagging of clicks, password
//! links and the unknown-code counter. New data is read only through new endpoints, opt-in
//! query parameters or the details endpoints; the contract's payloads keep their exact keys.

use serde_json::json;

use crate::backend_test;
use crate::helpers::{TestApp, parts};

/// `GET path` as (status, content type, bytes).
async fn raw(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let resp = app.get(path).await;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, resp.bytes().await.unwrap().to_vec())
}

/// Decodes a PNG: (width, height, 8-bit luminance pixels).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The text of the one QR code in a luminance image.
fn read_qr(width: u32, pixels: &[u8]) -> String {
    let w = width as usize;
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(w, pixels.len() / w, |x, y| pixels[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// A 400 or 404 in the contract's envelope with this exact message.
async fn refused(app: &TestApp, path: &str, status: u16, message: &str) {
    let (got, _, body) = parts(app.get(path).await).await;
    assert_eq!(got, status, "{path} -> {body}");
    assert_eq!(body, json!({ "error": message }), "{path}");
}

backend_test! {
    async fn qr_png_has_the_asked_size_and_encodes_the_short_url(app) {
        let url = app.create_url("https://example.com/qr").await;
        let (id, code) = (&url["id"], url["short_code"].as_str().unwrap());
        let short_url = app.url(&format!("/r/{code}"));

        // Default: a PNG of 256 × 256.
        let (status, content_type, bytes) = raw(&app, &format!("/urls/{id}/qr")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/png"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        let (w, h, pixels) = decode_png(&bytes);
        assert_eq!((w, h), (256, 256));
        assert_eq!(read_qr(w, &pixels), short_url);

        for size in [64, 300, 2048] {
            let (status, content_type, bytes) =
                raw(&app, &format!("/urls/{id}/qr?format=png&size={size}")).await;
            assert_eq!((status, content_type.as_str()), (200, "image/png"), "size {size}");
            let (w, h, pixels) = decode_png(&bytes);
            assert_eq!((w, h), (size, size));
            if size <= 300 {
                assert_eq!(read_qr(w, &pixels), short_url, "size {size}");
            }
        }
    }
}

backend_test! {
    async fn qr_svg_is_xml_of_the_asked_size(app) {
        let url = app.create_url("https://example.com/qr-svg").await;
        let id = &url["id"];
        let (status, content_type, bytes) = raw(&app, &format!("/urls/{id}/qr?format=svg&size=512")).await;
        assert_eq!((status, content_type.as_str()), (200, "image/svg+xml"));
        let mut reader = quick_xml::Reader::from_reader(bytes.as_slice());
        let mut buf = Vec::new();
        let mut root = None;
        let mut elements = 0;
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                quick_xml::events::Event::Eof => break,
                quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                    elements += 1;
                    if root.is_none() {
                        let attr = |name: &str| {
                            e.try_get_attribute(name).unwrap().map(|a| a.unescape_value().unwrap().into_owned())
                        };
                        root = Some((
                            String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
                            attr("width"),
                            attr("height"),
                        ));
                    }
                }
                _ => {}
            }
            buf.clear();
        }
        assert_eq!(
            root,
            Some(("svg".to_owned(), Some("512".to_owned()), Some("512".to_owned())))
        );
        // The background and the modules.
        assert_eq!(elements, 3);
    }
}

backend_test! {
    async fn qr_refuses_bad_formats_and_sizes_and_unknown_links(app) {
        let url = app.create_url("https://example.com/qr-bad").await;
        let id = &url["id"];
        for format in ["gif", "", "png%20svg"] {
            refused(&app, &format!("/urls/{id}/qr?format={format}"), 400,
                "Query parameter 'format' must be 'png' or 'svg'").await;
        }
        for size in ["63", "2049", "0", "-256", "abc", "256.5", ""] {
            refused(&app, &format!("/urls/{id}/qr?size={size}"), 400,
                "Query parameter 'size' must be an integer from 64 to 2048").await;
        }
        refused(&app, "/urls/999999/qr", 404, "URL not found").await;
        refused(&app, "/urls/99999999999999999999/qr", 404, "URL not found").await;
        refused(&app, "/urls/abc/qr", 404, "Not found").await;
    }
}

backend_test! {
    async fn link_page_shows_the_qr_code(app) {
        let url = app.create_url("https://example.com/qr-page").await;
        let code = url["short_code"].as_str().unwrap();
        let (status, content_type, bytes) = raw(&app, &format!("/ui/links/{code}")).await;
        assert_eq!(status, 200);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = String::from_utf8(bytes).unwrap();
        let (_, qr) = page.split_once("<figure id=\"qr\">").expect("a QR figure");
        assert!(qr.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{qr}");
        // The markup is the image itself, not escaped text.
        assert!(!page.contains("&lt;svg"));
        assert!(qr.contains(&format!("/urls/{}/qr?format=png", url["id"])));
    }
}
