//! A strict, allocation-free CBOR reader for the few shapes an EHC1 token uses.
//!
//! Why not a general decoder: the verifier reads untrusted bytes, and the only
//! shapes it needs are a tag, a 4-array, byte/text strings, small ints and flat
//! maps. Reading exactly those, in their shortest (RFC 8949 §4.2.1) form, means
//! there is no recursion (nesting attacks are impossible), no allocation driven
//! by a length field, and every token has exactly one byte encoding.

/// Why a read failed. Callers map every variant to `Malformed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CborError;

pub(crate) type Result<T> = std::result::Result<T, CborError>;

/// Major types (RFC 8949 §3.1).
pub(crate) const UINT: u8 = 0;
pub(crate) const NINT: u8 = 1;
pub(crate) const BYTES: u8 = 2;
pub(crate) const TEXT: u8 = 3;
pub(crate) const ARRAY: u8 = 4;
pub(crate) const MAP: u8 = 5;
pub(crate) const TAG: u8 = 6;

/// A cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A scalar item: what a flat map may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(&'a str),
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// True once every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(CborError)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| CborError)?;
        let end = self.pos.checked_add(n).ok_or(CborError)?;
        let out = self.buf.get(self.pos..end).ok_or(CborError)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads an item head: major type and argument. Indefinite lengths,
    /// reserved values and non-shortest arguments are refused.
    pub(crate) fn head(&mut self) -> Result<(u8, u64)> {
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let (arg, min) = match info {
            0..=23 => return Ok((major, u64::from(info))),
            24 => (u64::from(self.byte()?), 24),
            25 => (u64::from(u16::from_be_bytes(self.array::<2>()?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(self.array::<4>()?)), 0x1_0000),
            27 => (u64::from_be_bytes(self.array::<8>()?), 0x1_0000_0000),
            _ => return Err(CborError),
        };
        if arg < min {
            return Err(CborError);
        }
        Ok((major, arg))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N as u64)?;
        bytes.try_into().map_err(|_| CborError)
    }

    /// Reads a head that must be of `major` type; returns its argument.
    pub(crate) fn expect(&mut self, major: u8) -> Result<u64> {
        match self.head()? {
            (m, arg) if m == major => Ok(arg),
            _ => Err(CborError),
        }
    }

    /// Reads a byte string.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.expect(BYTES)?;
        self.take(len)
    }

    /// Reads a scalar: an integer that fits `i64`, a byte string or a UTF-8 text string.
    pub(crate) fn scalar(&mut self) -> Result<Scalar<'a>> {
        match self.head()? {
            (UINT, n) => i64::try_from(n).map(Scalar::Int).map_err(|_| CborError),
            // -1 - n, computed without overflow for n <= i64::MAX.
            (NINT, n) => i64::try_from(n)
                .map(|n| Scalar::Int(-1 - n))
                .map_err(|_| CborError),
            (BYTES, len) => self.take(len).map(Scalar::Bytes),
            (TEXT, len) => {
                let raw = self.take(len)?;
                std::str::from_utf8(raw)
                    .map(Scalar::Text)
                    .map_err(|_| CborError)
            }
            _ => Err(CborError),
        }
    }

    /// Reads an integer map key or value.
    pub(crate) fn int(&mut self) -> Result<i64> {
        match self.scalar()? {
            Scalar::Int(n) => Ok(n),
            _ => Err(CborError),
        }
    }
}

/// Calls `f(label, value)` for each entry of a flat map with integer labels
/// (at most `max_entries`). Duplicate labels are refused, as RFC 9052 §3 and
/// RFC 8392 §7.1 require; labels must be in strictly increasing canonical
/// order, which also rules out duplicates in O(n).
pub(crate) fn read_flat_map<'a>(
    r: &mut Reader<'a>,
    max_entries: u64,
    mut f: impl FnMut(i64, Scalar<'a>) -> Result<()>,
) -> Result<()> {
    let n = r.expect(MAP)?;
    if n > max_entries {
        return Err(CborError);
    }
    let mut prev: Option<i64> = None;
    for _ in 0..n {
        let label = r.int()?;
        if let Some(p) = prev {
            if canonical_key_cmp(p, label) != std::cmp::Ordering::Less {
                return Err(CborError);
            }
        }
        prev = Some(label);
        let value = r.scalar()?;
        f(label, value)?;
    }
    Ok(())
}

/// RFC 8949 §4.2.1 order of integer keys: by encoded bytes, which for ints is
/// all unsigned before all negative, then by encoded length, then by value.
/// For unsigned that is numeric order; for negative, -1 < -2 < ... (by magnitude).
pub(crate) fn canonical_key_cmp(a: i64, b: i64) -> std::cmp::Ordering {
    // Map each key to (major, argument): comparing those tuples gives the
    // bytewise order because shortest-form heads grow with the argument.
    let key = |v: i64| -> (u8, u64) {
        if v >= 0 {
            (UINT, v as u64)
        } else {
            (NINT, (-1 - v) as u64)
        }
    };
    key(a).cmp(&key(b))
}

/// Writes a shortest-form head.
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= 0xff {
        out.extend_from_slice(&[m | 24, arg as u8]);
    } else if arg <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Writes an integer in its shortest form (major type 0 or 1).
pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        write_head(out, UINT, n as u64);
    } else {
        // -1 - n, computed without overflow for i64::MIN.
        write_head(out, NINT, !(n as u64));
    }
}

/// Writes a byte string.
pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_head(out, BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shortest_heads_and_refuses_long_forms() {
        assert_eq!(Reader::new(&[0x17]).head(), Ok((UINT, 23)));
        assert_eq!(Reader::new(&[0x18, 0x18]).head(), Ok((UINT, 24)));
        assert_eq!(Reader::new(&[0x18, 0x17]).head(), Err(CborError));
        assert_eq!(Reader::new(&[0x59, 0x00, 0x40]).head(), Err(CborError));
        assert_eq!(Reader::new(&[0x5f]).head(), Err(CborError));
        assert_eq!(Reader::new(&[0x1c]).head(), Err(CborError));
        assert_eq!(Reader::new(&[]).head(), Err(CborError));
        assert_eq!(Reader::new(&[0x1b, 0, 0]).head(), Err(CborError));
    }

    #[test]
    fn scalars_and_ints() {
        assert_eq!(Reader::new(&[0x27]).int(), Ok(-8));
        assert_eq!(Reader::new(&[0x3a, 0, 1, 0, 0]).int(), Ok(-65537));
        assert_eq!(Reader::new(&[0x3a, 0, 1, 0, 1]).int(), Ok(-65538));
        let huge = [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&huge).int(), Err(CborError));
        let min = [0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&min).int(), Ok(i64::MIN));
        assert_eq!(
            Reader::new(&[0x62, b'H', b'C']).scalar(),
            Ok(Scalar::Text("HC"))
        );
        assert_eq!(Reader::new(&[0x62, 0xff, 0xfe]).scalar(), Err(CborError));
        assert_eq!(Reader::new(&[0x80]).scalar(), Err(CborError));
        // A length far past the end must fail without allocating.
        let long = [0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&long).bytes(), Err(CborError));
    }

    #[test]
    fn write_head_round_trips() {
        for arg in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            write_head(&mut out, BYTES, arg);
            assert_eq!(Reader::new(&out).head(), Ok((BYTES, arg)));
        }
    }

    #[test]
    fn flat_map_requires_canonical_order() {
        let ok = [0xa2, 0x01, 0x27, 0x04, 0x41, 0x00];
        let mut seen = Vec::new();
        read_flat_map(&mut Reader::new(&ok), 8, |k, _| {
            seen.push(k);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![1, 4]);
        let dup = [0xa2, 0x01, 0x27, 0x01, 0x27];
        assert!(read_flat_map(&mut Reader::new(&dup), 8, |_, _| Ok(())).is_err());
        let unordered = [0xa2, 0x04, 0x41, 0x00, 0x01, 0x27];
        assert!(read_flat_map(&mut Reader::new(&unordered), 8, |_, _| Ok(())).is_err());
        let nested = [0xa1, 0x01, 0x81, 0x00];
        assert!(read_flat_map(&mut Reader::new(&nested), 8, |_, _| Ok(())).is_err());
        assert!(canonical_key_cmp(7, -65537).is_lt());
        assert!(canonical_key_cmp(-65537, -65538).is_lt());
        assert!(canonical_key_cmp(-1, -2).is_lt());
    }
}
