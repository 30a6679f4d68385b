//! Tensor encodings: f16 and Q8_0, written the way ggml reads them.

/// IEEE 754 half precision, rounded to nearest even.
pub fn f16_bits(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x007f_ffff;
    if exponent == 0xff {
        // Inf or NaN.
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let half_exponent = exponent - 127 + 15;
    if half_exponent >= 0x1f {
        return sign | 0x7c00;
    }
    if half_exponent <= 0 {
        if half_exponent < -10 {
            return sign;
        }
        let mantissa = mantissa | 0x0080_0000;
        let shift = (14 - half_exponent) as u32;
        let half = mantissa >> shift;
        let rest = mantissa & ((1 << shift) - 1);
        let halfway = 1 << (shift - 1);
        let round_up = rest > halfway || (rest == halfway && half & 1 == 1);
        return sign | (half + u32::from(round_up)) as u16;
    }
    let half = ((half_exponent as u32) << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    let round_up = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    sign | (half + u32::from(round_up)) as u16
}

pub fn encode_f16(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| f16_bits(*v).to_le_bytes())
        .collect()
}

/// Q8_0: blocks of 32 values as an f16 scale and 32 signed bytes.
pub fn encode_q8_0(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() / 32 * 34);
    for block in values.chunks(32) {
        let max = block.iter().fold(0f32, |max, v| max.max(v.abs()));
        let scale = max / 127.0;
        let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        out.extend_from_slice(&f16_bits(scale).to_le_bytes());
        for value in block {
            #[allow(clippy::cast_possible_truncation)]
            let quantized = (value * inverse).round().clamp(-127.0, 127.0) as i8;
            out.push(quantized.to_le_bytes()[0]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_known_values() {
        assert_eq!(f16_bits(0.0), 0x0000);
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(-2.0), 0xc000);
        assert_eq!(f16_bits(65504.0), 0x7bff);
        assert_eq!(f16_bits(1e6), 0x7c00);
        assert_eq!(f16_bits(0.000_061_035_156), 0x0400, "smallest normal");
        assert_eq!(f16_bits(5.960_464_5e-8), 0x0001, "smallest subnormal");
    }

    #[test]
    fn q8_0_blocks_are_34_bytes() {
        let values: Vec<f32> = (0..64).map(|i| i as f32 / 64.0).collect();
        let encoded = encode_q8_0(&values);
        assert_eq!(encoded.len(), 68);
        assert_eq!(encoded[2 + 31] as i8, 127, "the largest value maps to 127");
    }
}
