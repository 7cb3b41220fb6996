//! QR codes of short links, as SVG and PNG (SPEC §9).
//!
//! A code encodes the link's short URL with `?qr=1`, so scans are counted as QR visits
//! ([`smo1_core::click::QR_PARAM`]). `qrcode` lays out the modules; both images are drawn from
//! that grid here, so they look the same: the code centred on a square of exactly `size` pixels,
//! each module a whole number of pixels (sharp edges scan best), the quiet zone and any spare
//! pixels in the background colour. PNGs are 1-bit palette images: a 2048 px code is a few KiB
//! and never a large pixel buffer in memory.

use crate::error::{AppError, Result};
use qrcode::{Color, EcLevel, QrCode};
use std::fmt::Write as _;
use std::str::FromStr;

/// Smallest and largest image side, in pixels.
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 64..=2048;
/// Widest quiet zone, in modules (the standard asks for 4).
pub const MAX_QUIET_ZONE: u32 = 16;

/// The URL a QR code of the link at `short_url` encodes.
pub fn qr_url(short_url: &str) -> String {
    let separator = if short_url.contains('?') { '&' } else { '?' };
    format!("{short_url}{separator}{}=1", smo1_core::click::QR_PARAM)
}

/// A colour as `rrggbb` hex (a leading `#` is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    pub const BLACK: Rgb = Rgb([0, 0, 0]);
    pub const WHITE: Rgb = Rgb([255, 255, 255]);

    /// `rrggbb`, lower case.
    pub fn hex(self) -> String {
        let [r, g, b] = self.0;
        format!("{r:02x}{g:02x}{b:02x}")
    }

    /// WCAG relative luminance, 0 (black) to 1 (white).
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }
}

impl FromStr for Rgb {
    type Err = AppError;

    fn from_str(s: &str) -> Result<Self> {
        let hex = s.strip_prefix('#').unwrap_or(s);
        let invalid = || AppError::Validation(format!("{s:?} is not a colour as rrggbb hex"));
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid());
        Ok(Rgb([byte(0)?, byte(2)?, byte(4)?]))
    }
}

/// How to draw a code; [`QrOptions::new`] validates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QrOptions {
    /// Side of the square image, in pixels.
    pub size: u32,
    pub foreground: Rgb,
    pub background: Rgb,
    /// Margin around the code, in modules.
    pub quiet_zone: u32,
}

impl Default for QrOptions {
    fn default() -> Self {
        Self {
            size: 512,
            foreground: Rgb::BLACK,
            background: Rgb::WHITE,
            quiet_zone: 4,
        }
    }
}

/// Least contrast between the colours (WCAG ratio); phones struggle below it.
pub const MIN_CONTRAST: f64 = 3.0;

impl QrOptions {
    pub fn new(size: u32, foreground: Rgb, background: Rgb, quiet_zone: u32) -> Result<Self> {
        if !SIZE_RANGE.contains(&size) {
            return Err(AppError::Validation(format!(
                "size must be {} to {} pixels",
                SIZE_RANGE.start(),
                SIZE_RANGE.end()
            )));
        }
        if quiet_zone > MAX_QUIET_ZONE {
            return Err(AppError::Validation(format!(
                "quiet zone must be 0 to {MAX_QUIET_ZONE} modules"
            )));
        }
        let (light, dark) = {
            let (f, b) = (foreground.luminance(), background.luminance());
            (f.max(b), f.min(b))
        };
        if (light + 0.05) / (dark + 0.05) < MIN_CONTRAST {
            return Err(AppError::Validation(format!(
                "foreground and background need a contrast of at least {MIN_CONTRAST}:1 to scan"
            )));
        }
        Ok(Self {
            size,
            foreground,
            background,
            quiet_zone,
        })
    }
}

/// The module grid of a code and where it sits in the image.
struct Layout {
    dark: Vec<bool>,
    /// Modules per side of the code itself.
    width: usize,
    /// Pixels per module.
    scale: u32,
    /// Pixels from the image edge to the first module (quiet zone plus centring).
    offset: u32,
}

impl Layout {
    fn new(url: &str, options: &QrOptions) -> Result<Self> {
        // Medium correction: survives scuffs and print, keeps typical short URLs at version 2-3.
        let code = QrCode::with_error_correction_level(url, EcLevel::M).map_err(|e| {
            AppError::Validation(format!("cannot encode this URL as a QR code: {e}"))
        })?;
        let width = code.width();
        let modules = u32::try_from(width).unwrap_or(u32::MAX) + 2 * options.quiet_zone;
        let scale = options.size / modules;
        if scale == 0 {
            return Err(AppError::Validation(format!(
                "size must be at least {modules} pixels for this code"
            )));
        }
        let code_px = scale * u32::try_from(width).unwrap_or(u32::MAX);
        Ok(Self {
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
            width,
            scale,
            offset: (options.size - code_px) / 2,
        })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark[y * self.width + x]
    }
}

/// The code for `url` as an SVG document: one background rectangle and one path of dark runs.
pub fn render_svg(url: &str, options: &QrOptions) -> Result<String> {
    let layout = Layout::new(url, options)?;
    let size = options.size;
    let mut path = String::new();
    for y in 0..layout.width {
        let mut x = 0;
        while x < layout.width {
            if !layout.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < layout.width && layout.is_dark(x, y) {
                x += 1;
            }
            let px = |m: usize| layout.offset + layout.scale * m as u32;
            let _ = write!(
                path,
                "M{} {}h{}v{}h-{}z",
                px(start),
                px(y),
                layout.scale * (x - start) as u32,
                layout.scale,
                layout.scale * (x - start) as u32,
            );
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{size}\" height=\"{size}\" \
         viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#{}\"/>\
         <path fill=\"#{}\" d=\"{path}\"/></svg>",
        options.background.hex(),
        options.foreground.hex(),
    ))
}

/// The code for `url` as a PNG: a 1-bit image with a two-colour palette.
pub fn render_png(url: &str, options: &QrOptions) -> Result<Vec<u8>> {
    let layout = Layout::new(url, options)?;
    let size = options.size as usize;
    let row_bytes = size.div_ceil(8);
    // Palette index 1 is the foreground.
    let mut rows = vec![0u8; row_bytes * size];
    let code_px = layout.width * layout.scale as usize;
    let offset = layout.offset as usize;
    for py in offset..offset + code_px {
        let my = (py - offset) / layout.scale as usize;
        let row = &mut rows[py * row_bytes..(py + 1) * row_bytes];
        for px in offset..offset + code_px {
            if layout.is_dark((px - offset) / layout.scale as usize, my) {
                row[px / 8] |= 0x80 >> (px % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, options.size, options.size);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_palette(
        [options.background.0, options.foreground.0]
            .concat()
            .to_vec(),
    );
    encoder.set_compression(png::Compression::High);
    let png_error = |e: png::EncodingError| AppError::Internal(format!("encoding a QR PNG: {e}"));
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&rows).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_are_marked_as_qr() {
        assert_eq!(qr_url("https://sho.rt/abc"), "https://sho.rt/abc?qr=1");
        assert_eq!(
            qr_url("https://sho.rt/abc?x=1"),
            "https://sho.rt/abc?x=1&qr=1"
        );
    }

    #[test]
    fn colours_are_rrggbb() {
        assert_eq!("1d4ED8".parse::<Rgb>().unwrap(), Rgb([0x1d, 0x4e, 0xd8]));
        assert_eq!("#000000".parse::<Rgb>().unwrap(), Rgb::BLACK);
        assert_eq!(Rgb([0x1d, 0x4e, 0xd8]).hex(), "1d4ed8");
        for bad in ["", "fff", "12345g", "1234567", "+12345"] {
            assert!(bad.parse::<Rgb>().is_err(), "{bad}");
        }
    }

    #[test]
    fn options_are_validated() {
        let ok = |size, fg, bg, qz| QrOptions::new(size, fg, bg, qz);
        assert!(ok(64, Rgb::BLACK, Rgb::WHITE, 4).is_ok());
        assert!(ok(2048, Rgb::WHITE, Rgb::BLACK, 0).is_ok());
        assert!(ok(63, Rgb::BLACK, Rgb::WHITE, 4).is_err());
        assert!(ok(2049, Rgb::BLACK, Rgb::WHITE, 4).is_err());
        assert!(ok(512, Rgb::BLACK, Rgb::WHITE, 17).is_err());
        assert!(ok(512, Rgb([0x77; 3]), Rgb([0x88; 3]), 4).is_err());
    }

    #[test]
    fn images_are_exactly_the_size_asked() {
        let options = QrOptions::new(300, Rgb::BLACK, Rgb::WHITE, 4).unwrap();
        let svg = render_svg("https://sho.rt/abc?qr=1", &options).unwrap();
        assert!(svg.contains("width=\"300\" height=\"300\""));
        let png = render_png("https://sho.rt/abc?qr=1", &options).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (300, 300));
    }

    #[test]
    fn a_code_too_big_for_the_size_is_refused() {
        let long = format!("https://sho.rt/{}", "a".repeat(400));
        let small = QrOptions::new(64, Rgb::BLACK, Rgb::WHITE, 4).unwrap();
        assert!(matches!(
            render_png(&long, &small),
            Err(AppError::Validation(_))
        ));
    }
}
