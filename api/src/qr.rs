//! QR codes of short URLs, as PNG or SVG images of an exact pixel size.
//!
//! The `qrcode` crate computes the matrix (error correction level M); the images are drawn here
//! so that a PNG is exactly `size` × `size` pixels whatever the module count: each pixel shows
//! the module under it (nearest neighbour), with the standard quiet zone of 4 modules. A code
//! needs at least one pixel per module, so a size smaller than the matrix is refused.

use qrcode::{Color, QrCode};

/// Smallest and largest image sizes served, in pixels.
pub const MIN_SIZE: u32 = 64;
pub const MAX_SIZE: u32 = 2048;
/// Size when none is asked for.
pub const DEFAULT_SIZE: u32 = 256;
/// Light modules around the code, as the standard asks.
const QUIET_ZONE: usize = 4;

/// Why an image cannot be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QrError {
    /// The data does not fit in any QR version.
    #[error("the short URL is too long for a QR code")]
    TooLong,
    /// Fewer pixels than modules (quiet zone included).
    #[error("the image must be at least {0} pixels wide for this code")]
    TooSmall(u32),
    /// The PNG encoder failed (a bug: the parameters are fixed here).
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// The dark/light matrix of `data` with its quiet zone, `n` × `n` modules.
struct Matrix {
    n: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn of(data: &str) -> Result<Self, QrError> {
        let code = QrCode::new(data.as_bytes()).map_err(|_| QrError::TooLong)?;
        let width = code.width();
        let n = width + 2 * QUIET_ZONE;
        let mut dark = vec![false; n * n];
        for (i, color) in code.to_colors().into_iter().enumerate() {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            dark[y * n + x] = color == Color::Dark;
        }
        Ok(Self { n, dark })
    }

    fn fits(&self, size: u32) -> Result<(), QrError> {
        let n = u32::try_from(self.n).unwrap_or(u32::MAX);
        if size < n {
            return Err(QrError::TooSmall(n));
        }
        Ok(())
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.n + x]
    }
}

/// A PNG of `data`'s QR code, `size` × `size` pixels, 1-bit grayscale.
pub fn png(data: &str, size: u32) -> Result<Vec<u8>, QrError> {
    let matrix = Matrix::of(data)?;
    matrix.fits(size)?;
    let pixels_per_side = size as usize;
    let row_bytes = pixels_per_side.div_ceil(8);
    let mut pixels = vec![0u8; row_bytes * pixels_per_side];
    for py in 0..pixels_per_side {
        let my = py * matrix.n / pixels_per_side;
        for px in 0..pixels_per_side {
            // Grayscale 1-bit: a set bit is white.
            if !matrix.is_dark(px * matrix.n / pixels_per_side, my) {
                pixels[py * row_bytes + px / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = ::png::Encoder::new(&mut out, size, size);
    encoder.set_color(::png::ColorType::Grayscale);
    encoder.set_depth(::png::BitDepth::One);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels))
        .map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

/// An SVG of `data`'s QR code, `size` × `size` pixels (one unit per module in the view box,
/// so it scales without blur).
pub fn svg(data: &str, size: u32) -> Result<String, QrError> {
    use std::fmt::Write;
    let matrix = Matrix::of(data)?;
    matrix.fits(size)?;
    let n = matrix.n;
    let mut path = String::new();
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if matrix.is_dark(x, y) {
                let start = x;
                while x < n && matrix.is_dark(x, y) {
                    x += 1;
                }
                let _ = write!(path, "M{start} {y}h{}v1h-{}z", x - start, x - start);
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"0 0 {n} {n}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{n}\" height=\"{n}\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn png_has_the_exact_size_and_a_light_quiet_zone() {
        for size in [64, 100, 256, 257] {
            let bytes = png("http://localhost/r/abc123", size).unwrap();
            let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size().unwrap()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!((info.width, info.height), (size, size));
            // Top-left pixel is the quiet zone (white), the finder pattern starts after it.
            assert_ne!(buf[0] & 0x80, 0);
        }
    }

    #[test]
    fn too_small_sizes_are_refused() {
        let long = format!("http://{}/r/abc123", "h".repeat(200));
        assert!(matches!(png(&long, 64), Err(QrError::TooSmall(n)) if n > 64));
        assert_eq!(svg(&"x".repeat(5000), 256), Err(QrError::TooLong));
    }

    #[test]
    fn svg_declares_its_size() {
        let s = svg("http://localhost/r/abc123", 300).unwrap();
        assert!(
            s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"300\"")
        );
        assert!(s.contains("<path d=\"M4 4h7v1h-7z"), "{s}");
    }
}
