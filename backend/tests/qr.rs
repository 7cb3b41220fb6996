//! QR codes of short links: the PNG decodes back to the short URL with `?qr=1` (read by an
//! independent decoder, `rqrr`), and the SVG is well-formed XML in the asked colours and size.

use smo1_origin::links::qr::{self, QrOptions, Rgb};

/// Decodes `png` (any colour type) to greyscale and reads the one QR code in it.
fn decode(png: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("buffer size")];
    let frame = reader.next_frame(&mut pixels).expect("PNG data");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let grey = |x: usize, y: usize| {
        let at = (y * width + x) * channels;
        let rgb = &pixels[at..at + channels.min(3)];
        (rgb.iter().map(|&c| u32::from(c)).sum::<u32>() / rgb.len() as u32) as u8
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    let (_, content) = grids[0].decode().expect("decodable QR code");
    content
}

#[test]
fn the_png_decodes_to_the_short_url_marked_as_qr() {
    let url = qr::qr_url("https://sho.rt/launch-2026");
    assert_eq!(url, "https://sho.rt/launch-2026?qr=1");
    for options in [
        QrOptions::default(),
        QrOptions::new(64, Rgb::BLACK, Rgb::WHITE, 4).unwrap(),
        QrOptions::new(333, "1d4ed8".parse().unwrap(), "fefce8".parse().unwrap(), 2).unwrap(),
        QrOptions::new(2048, Rgb::BLACK, Rgb::WHITE, 8).unwrap(),
    ] {
        let png = qr::render_png(&url, &options).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(decode(&png), url, "{options:?}");
    }
}

#[test]
fn the_svg_is_well_formed_in_the_asked_colours_and_size() {
    let url = qr::qr_url("https://sho.rt/abc");
    let options = QrOptions::new(
        400,
        "#1D4ED8".parse().unwrap(),
        "fefce8".parse().unwrap(),
        4,
    )
    .unwrap();
    let svg = qr::render_svg(&url, &options).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("width"), Some("400"));
    assert_eq!(root.attribute("height"), Some("400"));
    let fills: Vec<&str> = root
        .descendants()
        .filter_map(|node| node.attribute("fill"))
        .collect();
    assert_eq!(
        fills,
        ["#fefce8", "#1d4ed8"],
        "background, then the modules"
    );
    let path = root
        .descendants()
        .find(|node| node.has_tag_name("path"))
        .and_then(|node| node.attribute("d"))
        .expect("a path of dark modules");
    assert!(path.starts_with('M') && path.ends_with('z'));
}

#[test]
fn bad_options_are_validation_errors() {
    for result in [
        QrOptions::new(32, Rgb::BLACK, Rgb::WHITE, 4).map(|_| ()),
        QrOptions::new(4096, Rgb::BLACK, Rgb::WHITE, 4).map(|_| ()),
        QrOptions::new(256, Rgb::WHITE, Rgb::WHITE, 4).map(|_| ()),
        "zzzzzz".parse::<Rgb>().map(|_| ()),
    ] {
        assert_eq!(result.unwrap_err().code(), "validation_failed");
    }
}
