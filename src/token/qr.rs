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

/// As [`encode`], but with the mask chosen by the ISO/IEC 18004 penalty search,
/// exactly the symbol `QrCode::new` makes (see [`penalty`]). For printed
/// cards: they are made once and must scan from paper for years.
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
    let bits = match mask {
        Some(_) => {
            let mut bits = Bits::new(smallest_version(data)?);
            bits.push_alphanumeric_data(data)
                .and_then(|()| bits.push_terminator(EC_LEVEL))
                .map_err(|_| QrError::TooLong)?;
            bits
        }
        // The print path is `QrCode::new` but for the speed of the mask
        // choice, so it also takes qrcode's segment optimiser: for some texts
        // (a run of digits in the base45) it mixes numeric and alphanumeric
        // segments, a different bit stream from our single segment.
        None => {
            smallest_version(data)?;
            qrcode::bits::encode_auto(data, EC_LEVEL).map_err(|_| QrError::TooLong)?
        }
    };
    let version = bits.version();
    let (codewords, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, EC_LEVEL)
        .map_err(|_| QrError::TooLong)?;
    let mut canvas = Canvas::new(version, EC_LEVEL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&codewords, &ec);
    let width = version.width() as usize;
    let modules = match mask {
        Some(m) => masked(canvas, m),
        // The first mask of least penalty, in pattern order, as qrcode's
        // `apply_best_mask` (min_by_key keeps the first of equal minima).
        None => ALL_MASKS
            .iter()
            .map(|&m| masked(canvas.clone(), m))
            .min_by_key(|grid| penalty(grid, width))
            .ok_or(QrError::TooLong)?,
    };
    let Version::Normal(v) = version else {
        return Err(QrError::TooLong);
    };
    Ok(Qr {
        version: v,
        width,
        modules,
    })
}

/// The eight mask patterns of ISO/IEC 18004, in their reference order.
pub const ALL_MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The symbol's modules with `mask` applied (and its format information drawn).
fn masked(mut canvas: Canvas, mask: MaskPattern) -> Vec<bool> {
    canvas.apply_mask(mask);
    canvas
        .into_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect()
}

/// The mask penalty of a finished symbol (`w` × `w` modules, row-major, dark =
/// true): ISO/IEC 18004:2015 section 7.8.3.1, table 11, scored as qrcode 0.14's
/// `Canvas::compute_total_penalty_scores` scores it, so that the chosen mask is
/// the one `QrCode::new` chooses (tests/token_qr.rs checks this symbol by
/// symbol). qrcode's scorer takes ~0.4 ms a mask (a boxed closure a module);
/// this one scans a 0/1 byte grid and its transpose without data-dependent
/// branches (random modules would mispredict every other one).
/// - N1 (3): each run of 5 + i modules of one colour in a row or column: 3 + i.
/// - N2 (3): each 2 × 2 block of one colour, overlapping blocks counted.
/// - N3 (40): each 1:1:3:1:1 dark-light-dark-light-dark run in a row or column
///   with 4 light modules on at least one side (outside the symbol counts as
///   light). The three finder patterns always score 18 such runs, which
///   qrcode subtracts; a constant does not change the choice, so we keep them.
/// - N4 (10 a 5 % step in the standard): qrcode scores |dark · 200 / total −
///   100| (integer division), 1 a half-percent, and so do we.
fn penalty(m: &[bool], w: usize) -> u32 {
    const FINDER: u32 = 0b101_1101;
    let rows: Vec<u8> = m.iter().map(|&d| d as u8).collect();
    let mut cols = vec![0u8; w * w];
    for (y, row) in rows.chunks_exact(w).enumerate() {
        for (x, &d) in row.iter().enumerate() {
            cols[x * w + y] = d;
        }
    }
    let mut score = 0;
    for line in rows.chunks_exact(w).chain(cols.chunks_exact(w)) {
        let (mut run, mut prev, mut last7) = (0u32, 2u8, 0u32);
        for (j, &d) in line.iter().enumerate() {
            // N1: a run ends where the colour changes (and at the line's end).
            let same = (d == prev) as u32;
            score += (1 - same) * (run >= 5) as u32 * run.saturating_sub(2);
            run = run * same + 1;
            prev = d;
            // N3: the last seven modules, newest in bit 0.
            last7 = ((last7 << 1) | d as u32) & 0x7f;
            if last7 == FINDER {
                let start = j - 6;
                let light_before = !line[start.saturating_sub(4)..start].contains(&1);
                let light_after = !line[j + 1..(j + 5).min(w)].contains(&1);
                score += 40 * (light_before || light_after) as u32;
            }
        }
        score += (run >= 5) as u32 * run.saturating_sub(2);
    }
    // N2: four modules of one colour sum to 0 or 4.
    for pair in rows.windows(2 * w).step_by(w) {
        let (top, bottom) = pair.split_at(w);
        let mut blocks = 0;
        for x in 0..w - 1 {
            let sum = top[x] + top[x + 1] + bottom[x] + bottom[x + 1];
            blocks += (sum & 3 == 0) as u32;
        }
        score += 3 * blocks;
    }
    // N4
    let dark = rows.iter().map(|&d| d as usize).sum::<usize>();
    score + (dark * 200 / rows.len()).abs_diff(100) as u32
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
                // "M{x} {y}h{run}v1h-{run}z", without core::fmt (a third of
                // the drawing time went to it).
                let run = x - start;
                out.push('M');
                push_decimal(&mut out, start + QUIET_ZONE);
                out.push(' ');
                push_decimal(&mut out, y + QUIET_ZONE);
                out.push('h');
                push_decimal(&mut out, run);
                out.push_str("v1h-");
                push_decimal(&mut out, run);
                out.push('z');
            }
        }
        out.push_str(r#""/></svg>"#);
        out
    }

    /// A 1-bit grayscale PNG, [`PNG_MODULE_PX`] pixels a module, with the
    /// quiet zone. One bit a pixel is an eighth of the data of 8-bit gray to
    /// filter and deflate; every PNG decoder reads it (bit depth 1 is baseline
    /// PNG). The Up filter turns the repeated pixel rows of a module row into
    /// zeros, which fdeflate's fast mode packs well.
    pub fn to_png(&self) -> Vec<u8> {
        let side = (self.width + 2 * QUIET_ZONE) * PNG_MODULE_PX;
        let stride = side.div_ceil(8);
        // 1 = white; padding bits past `side` in a row's last byte are ignored.
        let mut pixels = vec![0xffu8; stride * side];
        for y in 0..self.width {
            let top = (y + QUIET_ZONE) * PNG_MODULE_PX;
            let (first, rest) =
                pixels[top * stride..(top + PNG_MODULE_PX) * stride].split_at_mut(stride);
            let modules = &self.modules[y * self.width..(y + 1) * self.width];
            if PNG_MODULE_PX.is_multiple_of(8) {
                // Whole bytes a module: 0x00 dark, 0xff light, without a
                // branch (random modules would mispredict half the time).
                let per = PNG_MODULE_PX / 8;
                for (x, &dark) in modules.iter().enumerate() {
                    let b = (x + QUIET_ZONE) * per;
                    first[b..b + per].fill((dark as u8).wrapping_sub(1));
                }
            } else {
                for (x, _) in modules.iter().enumerate().filter(|(_, &d)| d) {
                    let left = (x + QUIET_ZONE) * PNG_MODULE_PX;
                    for px in left..left + PNG_MODULE_PX {
                        first[px / 8] &= !(0x80 >> (px % 8));
                    }
                }
            }
            // The other pixel rows of this module row are copies of the first.
            for copy in rest.chunks_exact_mut(stride) {
                copy.copy_from_slice(first);
            }
        }
        let mut out = Vec::with_capacity(4 * 1024);
        let side = side as u32;
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        encoder.set_compression(png::Compression::Fast);
        encoder.set_filter(png::Filter::Up);
        // Writing to a Vec cannot fail and the dimensions match the buffer.
        encoder
            .write_header()
            .and_then(|mut w| {
                w.write_image_data(&pixels)?;
                w.finish()
            })
            .expect("PNG encoding into memory");
        out
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[i..].iter().map(|&d| d as char));
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
    fn png_is_one_bit_gray_with_the_same_pixels() {
        let qr = encode("EHC1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDEMWK").unwrap();
        let png = qr.to_png();
        // IHDR: bit depth 1, colour type 0 (grayscale).
        assert_eq!(&png[24..26], &[1, 0]);
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)
            .unwrap()
            .to_luma8();
        let side = (qr.width() + 2 * QUIET_ZONE) * PNG_MODULE_PX;
        assert_eq!(img.dimensions(), (side as u32, side as u32));
        for (px, py, p) in img.enumerate_pixels() {
            let (mx, my) = (px as usize / PNG_MODULE_PX, py as usize / PNG_MODULE_PX);
            let dark = mx >= QUIET_ZONE
                && my >= QUIET_ZONE
                && qr.is_dark(mx - QUIET_ZONE, my - QUIET_ZONE);
            assert_eq!(p.0[0], if dark { 0 } else { 255 }, "pixel ({px}, {py})");
        }
    }

    #[test]
    fn decimal_digits() {
        for n in (0..2000).chain([9999, 10_000, 123_456_789, usize::MAX]) {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
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
