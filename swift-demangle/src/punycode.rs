//! Swift's punycode variant (RFC 3492 with `_` as delimiter and the digits
//! `a`–`z`, `A`–`J`), used for identifiers that are not plain ASCII.

const BASE: u32 = 36;
const TMIN: u32 = 1;
const TMAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

fn digit(c: u8) -> Option<u32> {
    match c {
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'A'..=b'J' => Some(u32::from(c - b'A') + 26),
        _ => None,
    }
}

fn adapt(mut delta: u32, num_points: u32, first: bool) -> u32 {
    delta /= if first { DAMP } else { 2 };
    delta += delta / num_points;
    let mut k = 0;
    while delta > ((BASE - TMIN) * TMAX) / 2 {
        delta /= BASE - TMIN;
        k += BASE;
    }
    k + (((BASE - TMIN + 1) * delta) / (delta + SKEW))
}

/// Decodes `input`, or `None` if it is not valid punycode.
pub(crate) fn decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let (basic, rest) = match bytes.iter().rposition(|&c| c == b'_') {
        Some(p) => (&bytes[..p], &bytes[p + 1..]),
        None => (&bytes[..0], bytes),
    };
    let mut out: Vec<u32> = Vec::with_capacity(bytes.len());
    for &c in basic {
        if c >= 0x80 {
            return None;
        }
        out.push(u32::from(c));
    }
    let mut n = INITIAL_N;
    let mut i: u32 = 0;
    let mut bias = INITIAL_BIAS;
    let mut pos = 0;
    while pos < rest.len() {
        let old_i = i;
        let mut w: u32 = 1;
        let mut k = BASE;
        loop {
            let d = digit(*rest.get(pos)?)?;
            pos += 1;
            i = i.checked_add(d.checked_mul(w)?)?;
            let t = if k <= bias {
                TMIN
            } else if k >= bias + TMAX {
                TMAX
            } else {
                k - bias
            };
            if d < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = out.len() as u32 + 1;
        bias = adapt(i - old_i, len, old_i == 0);
        n = n.checked_add(i / len)?;
        i %= len;
        if n < 0x80 {
            return None;
        }
        out.insert(i as usize, n);
        i += 1;
        if out.len() > 4096 {
            return None;
        }
    }
    // Swift maps ASCII characters that may not appear in identifiers to
    // U+D800 + c before encoding, so they are not "basic" code points.
    out.into_iter()
        .map(|c| {
            if (0xD800..0xD880).contains(&c) {
                char::from_u32(c - 0xD800)
            } else {
                char::from_u32(c)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_swift_punycode() {
        assert_eq!(
            super::decode("foospace_liaADEDGcja").as_deref(),
            // Raw identifiers keep their backquotes; Swift prints the space
            // as U+00A0, as the test corpus expects.
            Some("`foo\u{a0}space`")
        );
    }
}
