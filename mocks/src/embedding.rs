//! Deterministic embeddings in which similar texts are close: hashed character trigrams
//! (with word-boundary padding, lower-cased), signed, L2-normalised. Same text, same vector;
//! texts sharing most trigrams have a high cosine; unrelated texts are near orthogonal.

/// FNV-1a: stable across runs and platforms, unlike `std`'s randomly seeded hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn embed(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut v = vec![0f32; dims];
    let lowered = text.to_lowercase();
    for word in lowered.split_whitespace() {
        let padded: Vec<char> = std::iter::once(' ')
            .chain(word.chars())
            .chain(std::iter::once(' '))
            .collect();
        for gram in padded.windows(3) {
            let s: String = gram.iter().collect();
            let h = fnv1a(s.as_bytes());
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            v[(h % dims as u64) as usize] += sign;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        // Empty or blank text still gets a unit vector, as real models return one.
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Little-endian f32 bytes, base64: OpenAI's `encoding_format: "base64"`.
pub fn to_base64(v: &[f32]) -> String {
    use base64::Engine;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_normalised_and_similarity_preserving() {
        let a = embed("The cat sat on the mat", 256);
        assert_eq!(a, embed("The cat sat on the mat", 256));
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        let near = embed("the cat sat on a mat", 256);
        let far = embed("Quarterly revenue exceeded forecasts", 256);
        assert!(cosine(&a, &near) > 0.7, "{}", cosine(&a, &near));
        assert!(cosine(&a, &far) < 0.3, "{}", cosine(&a, &far));
        assert!(cosine(&a, &near) > cosine(&a, &far));
    }

    #[test]
    fn blank_text_is_still_a_unit_vector() {
        let v = embed("   ", 8);
        assert!((cosine(&v, &v) - 1.0).abs() < 1e-6);
    }
}
