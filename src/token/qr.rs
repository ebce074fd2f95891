//! QR rendering of token texts (SVG and PNG) and PNG decoding for the CLI and tests.
//!
//! Built from qrcode's lower-level parts rather than `QrCode::new`: the text is
//! known to be QR alphanumeric (base45), so one alphanumeric segment at level M
//! in the smallest version that holds it is optimal without the segment
//! optimiser, and the mask is fixed instead of searched (see [`MASK`]).

use std::fmt::Write as _;

use qrcode::bits::Bits;
use qrcode::canvas::Canvas;
pub use qrcode::canvas::MaskPattern;
use qrcode::{EcLevel, Version};

/// Error correction level M: recovers ~15% damage, the usual choice for
/// printed and on-screen codes, and what the size target is set at.
pub const EC_LEVEL: EcLevel = EcLevel::M;
/// Quiet zone, in modules, on each side (ISO/IEC 18004 requires 4).
pub const QUIET_ZONE: usize = 4;
/// PNG pixels per module: 8 px keeps a version 9 code (61 modules with the
/// quiet zone, 488 px) sharp at 300 dpi (~4.1 cm) and for phone cameras.
pub const PNG_MODULE_PX: usize = 8;

/// The mask applied to every code. ISO/IEC 18004 allows any of the eight;
/// the standard's penalty search only favours masks that avoid large blocks
/// and finder-like runs. Base45 of signed, random-looking bytes already has no
/// such structure, so the search (8 trial masks, most of the encode time) buys
/// almost nothing; docs/performance.md has the measurements. Pattern 0
/// (checkerboard) breaks up uniform areas best on average.
pub const MASK: MaskPattern = MaskPattern::Checkerboard;

/// Why a QR code could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// A character outside the QR alphanumeric set (a token never has one).
    #[error("text is not QR alphanumeric")]
    NotAlphanumeric,
    /// Too long even for version 40.
    #[error("text too long for a QR code")]
    TooLong,
    /// The image is not a PNG that could be read.
    #[error("not a readable PNG image")]
    BadImage,
    /// No QR code found or it could not be decoded.
    #[error("no readable QR code in the image")]
    NotFound,
}

/// A QR code symbol: its modules, row by row, `true` = dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qr {
    version: i16,
    width: usize,
    modules: Vec<bool>,
}

const ALPHANUMERIC: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Bits a single alphanumeric segment of `len` characters needs in `version`.
fn alphanumeric_bits(len: usize, version: i16) -> usize {
    let count_bits = match version {
        1..=9 => 9,
        10..=26 => 11,
        _ => 13,
    };
    4 + count_bits + 11 * (len / 2) + 6 * (len % 2)
}

/// Encodes `text` (QR alphanumeric characters only) in the smallest version at
/// level M, with the fixed [`MASK`].
pub fn encode(text: &str) -> Result<Qr, QrError> {
    encode_with_mask(text, MASK)
}

/// As [`encode`] with another mask pattern (for measurements and special prints).
pub fn encode_with_mask(text: &str, mask: MaskPattern) -> Result<Qr, QrError> {
    build(text, Some(mask))
}

/// As [`encode`], but with the mask chosen by the ISO/IEC 18004 penalty search
/// (~50x slower). For printed cards: they are made once and must scan from
/// paper for years, so the encoder's best effort is worth its milliseconds.
pub fn encode_for_print(text: &str) -> Result<Qr, QrError> {
    build(text, None)
}

/// The smallest version at level M that holds `text`, without drawing it.
pub fn version_for(text: &str) -> Result<i16, QrError> {
    match smallest_version(text.as_bytes())? {
        Version::Normal(v) => Ok(v),
        Version::Micro(_) => Err(QrError::TooLong),
    }
}

fn smallest_version(data: &[u8]) -> Result<Version, QrError> {
    if !data.iter().all(|c| ALPHANUMERIC.contains(c)) {
        return Err(QrError::NotAlphanumeric);
    }
    let mut chosen = None;
    for v in 1..=40 {
        let version = Version::Normal(v);
        let capacity = Bits::new(version)
            .max_len(EC_LEVEL)
            .map_err(|_| QrError::TooLong)?;
        if alphanumeric_bits(data.len(), v) <= capacity {
            chosen = Some(version);
            break;
        }
    }
    chosen.ok_or(QrError::TooLong)
}

fn build(text: &str, mask: Option<MaskPattern>) -> Result<Qr, QrError> {
    let data = text.as_bytes();
    let version = smallest_version(data)?;
    let mut bits = Bits::new(version);
    bits.push_alphanumeric_data(data)
        .and_then(|()| bits.push_terminator(EC_LEVEL))
        .map_err(|_| QrError::TooLong)?;
    let (codewords, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC_LEVEL)
        .map_err(|_| QrError::TooLong)?;
    let mut canvas = Canvas::new(version, EC_LEVEL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&codewords, &ec);
    let canvas = match mask {
        Some(m) => {
            canvas.apply_mask(m);
            canvas
        }
        None => canvas.apply_best_mask(),
    };
    let width = version.width() as usize;
    let modules = canvas
        .into_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    let Version::Normal(v) = version else {
        return Err(QrError::TooLong);
    };
    Ok(Qr {
        version: v,
        width,
        modules,
    })
}

impl Qr {
    /// The QR version (1..=40); 21 + 4·(version − 1) modules a side.
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.modules[y * self.width + x]
    }

    /// An SVG in module units (viewBox includes the quiet zone); scales to any
    /// size. One path of horizontal runs keeps it small and fast to write.
    pub fn to_svg(&self) -> String {
        let side = self.width + 2 * QUIET_ZONE;
        let mut out = String::with_capacity(400 + self.modules.len() * 6);
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" width="{px}" height="{px}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##,
            px = side * PNG_MODULE_PX,
        );
        for y in 0..self.width {
            let row = &self.modules[y * self.width..(y + 1) * self.width];
            let mut x = 0;
            while x < self.width {
                if !row[x] {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && row[x] {
                    x += 1;
                }
                let _ = write!(
                    out,
                    "M{} {}h{}v1h-{}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE,
                    x - start,
                    x - start
                );
            }
        }
        out.push_str(r#""/></svg>"#);
        out
    }

    /// A grayscale PNG, [`PNG_MODULE_PX`] pixels a module, with the quiet zone.
    pub fn to_png(&self) -> Vec<u8> {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        use image::ImageEncoder;

        let side = (self.width + 2 * QUIET_ZONE) * PNG_MODULE_PX;
        let mut pixels = vec![0xffu8; side * side];
        for y in 0..self.width {
            let top = (y + QUIET_ZONE) * PNG_MODULE_PX;
            let row = &mut pixels[top * side..(top + 1) * side];
            for x in 0..self.width {
                if self.modules[y * self.width + x] {
                    let left = (x + QUIET_ZONE) * PNG_MODULE_PX;
                    row[left..left + PNG_MODULE_PX].fill(0);
                }
            }
            // The other pixel rows of this module row are copies of the first.
            let (first, rest) = pixels[top * side..(top + PNG_MODULE_PX) * side].split_at_mut(side);
            for copy in rest.chunks_exact_mut(side) {
                copy.copy_from_slice(first);
            }
        }
        let mut png = Vec::with_capacity(8 * 1024);
        // Writing to a Vec cannot fail and the dimensions match the buffer.
        let side = side as u32;
        PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Up)
            .write_image(&pixels, side, side, image::ExtendedColorType::L8)
            .expect("PNG encoding into memory");
        png
    }
}

/// Reads the text of the first QR code in a PNG image (rqrr).
pub fn decode_png(png: &[u8]) -> Result<String, QrError> {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .map_err(|_| QrError::BadImage)?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    for grid in prepared.detect_grids() {
        if let Ok((_, content)) = grid.decode() {
            return Ok(content);
        }
    }
    Err(QrError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_encoding_is_the_reference_encoder_and_version_for_agrees() {
        let text = format!(
            "EHC1:{}",
            "6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEMWK G2EP4J0B".repeat(4)
        );
        let ours = encode_for_print(&text).unwrap();
        let reference = qrcode::QrCode::with_error_correction_level(&text, EC_LEVEL).unwrap();
        assert_eq!(ours.width(), reference.width());
        for y in 0..ours.width() {
            for x in 0..ours.width() {
                assert_eq!(ours.is_dark(x, y), reference[(x, y)] == qrcode::Color::Dark);
            }
        }
        assert_eq!(decode_png(&ours.to_png()).unwrap(), text);
        for len in [1, 50, 150, 227, 262, 263, 400] {
            let t = "A".repeat(len);
            assert_eq!(
                version_for(&t).unwrap(),
                encode(&t).unwrap().version(),
                "{len}"
            );
        }
        assert_eq!(version_for("lower"), Err(QrError::NotAlphanumeric));
    }

    #[test]
    fn smallest_version_and_png_round_trip() {
        let qr = encode("HELLO WORLD").unwrap();
        assert_eq!(qr.version(), 1);
        assert_eq!(qr.width(), 21);
        assert_eq!(decode_png(&qr.to_png()).unwrap(), "HELLO WORLD");
        assert_eq!(encode("hello"), Err(QrError::NotAlphanumeric));
        assert_eq!(encode(&"A".repeat(5000)), Err(QrError::TooLong));
        assert_eq!(decode_png(b"not a png"), Err(QrError::BadImage));
    }

    #[test]
    fn version_boundary_matches_qrcode_crate() {
        // The largest alphanumeric text a version holds at M, and one more char.
        for len in [20usize, 38, 61, 90, 122, 154, 178, 221, 262, 311] {
            let text = "A".repeat(len);
            let ours = encode(&text).unwrap().version();
            let theirs = qrcode::QrCode::with_error_correction_level(&text, EC_LEVEL).unwrap();
            assert_eq!(Version::Normal(ours), theirs.version(), "len {len}");
        }
    }

    #[test]
    fn svg_is_well_formed() {
        let svg = encode("EHC1:ABC").unwrap().to_svg();
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("viewBox=\"0 0 29 29\""));
    }
}
