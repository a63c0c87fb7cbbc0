//! llama2.c's `tokenizer.bin` and `run.c`'s `encode` / `decode`, reproduced exactly.
//!
//! File: int32 `max_token_length`, then for each of the model's `vocab_size` tokens: float32
//! score, int32 byte length, the bytes (no terminator). Pieces use a plain space where
//! sentencepiece writes `▁`; ids 3..=258 are the byte-fallback pieces `<0x00>`..`<0xFF>`.
//!
//! Encoding (`run.c` `encode(text, bos=1, eos=0)`): BOS (1); unless the text is empty, the
//! piece `" "` (the dummy prefix); then each UTF-8 code point (at most 4 bytes) as its piece, or,
//! if there is none, each of its bytes as id `byte + 3`; then, repeatedly, the adjacent pair
//! whose concatenation is a piece with the highest score (first pair on ties, scores compared
//! as f32 and only above -1e10) is merged, until no pair merges. The BOS token takes part in the
//! pair search like any other, as in `run.c`.
//!
//! Decoding (`run.c` `decode(prev, token)` + `safe_printf`): after BOS a leading space of the
//! piece is dropped; a piece `<0xHH>` is the raw byte; a one-byte piece that is neither
//! printable ASCII nor whitespace is not printed.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// `run.c`'s BOS id.
pub const BOS: usize = 1;
/// `run.c`'s EOS id.
pub const EOS: usize = 2;
/// `run.c`'s initial best merge score.
const NO_SCORE: f32 = -1e10;

/// A llama2.c tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokenizer {
    /// Piece bytes per id.
    pub pieces: Vec<Vec<u8>>,
    /// Merge score per id.
    pub scores: Vec<f32>,
    /// The header's longest piece length.
    pub max_token_length: usize,
    /// Piece -> id (the lowest id for duplicate pieces).
    lookup: HashMap<Vec<u8>, usize>,
}

impl Tokenizer {
    /// Reads `tokenizer.bin` for a model with `vocab_size` tokens.
    pub fn read(path: &Path, vocab_size: usize) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&bytes, vocab_size).map_err(|reason| Error::Tokenizer {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the bytes of a `tokenizer.bin`; the error is the reason only.
    pub fn parse(bytes: &[u8], vocab_size: usize) -> std::result::Result<Self, String> {
        let mut at = 0usize;
        let word = |at: &mut usize, what: &dyn Fn() -> String| {
            let w = bytes.get(*at..*at + 4).ok_or_else(|| {
                format!(
                    "truncated at byte {at} (file is {} bytes): expected {}",
                    bytes.len(),
                    what()
                )
            })?;
            *at += 4;
            Ok::<[u8; 4], String>(w.try_into().expect("4 bytes"))
        };
        let max = i32::from_le_bytes(word(&mut at, &|| "max_token_length".into())?);
        let max_token_length = usize::try_from(max)
            .ok()
            .filter(|&m| m >= 1)
            .ok_or_else(|| format!("max_token_length is {max}, must be at least 1"))?;
        let mut pieces = Vec::with_capacity(vocab_size.min(bytes.len() / 8));
        let mut scores = Vec::with_capacity(pieces.capacity());
        for id in 0..vocab_size {
            let score = f32::from_le_bytes(word(&mut at, &|| format!("the score of token {id}"))?);
            if score.is_nan() {
                return Err(format!("token {id} has a NaN score"));
            }
            let len = i32::from_le_bytes(word(&mut at, &|| format!("the length of token {id}"))?);
            let n = usize::try_from(len)
                .ok()
                .filter(|&n| n <= max_token_length)
                .ok_or_else(|| {
                    format!("token {id} has length {len}, outside 0..={max_token_length} (max_token_length)")
                })?;
            let piece = bytes.get(at..at + n).ok_or_else(|| {
                format!(
                    "truncated at byte {at} (file is {} bytes): token {id} needs {n} bytes",
                    bytes.len()
                )
            })?;
            at += n;
            pieces.push(piece.to_vec());
            scores.push(score);
        }
        if at != bytes.len() {
            return Err(format!(
                "{} unexpected bytes after the {vocab_size} tokens of the model's vocabulary",
                bytes.len() - at
            ));
        }
        let mut lookup = HashMap::with_capacity(pieces.len());
        for (id, p) in pieces.iter().enumerate() {
            lookup.entry(p.clone()).or_insert(id);
        }
        Ok(Tokenizer {
            pieces,
            scores,
            max_token_length,
            lookup,
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// True if there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The id of a piece.
    pub fn id(&self, piece: &[u8]) -> Option<usize> {
        self.lookup.get(piece).copied()
    }

    /// `run.c`'s `encode(text, bos = 1, eos = 0)`.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        let mut tokens = vec![BOS];
        if self.len() <= BOS {
            return Err(Error::Input(format!(
                "the tokenizer has {} tokens, no BOS id {BOS}",
                self.len()
            )));
        }
        let bytes = text.as_bytes();
        if !bytes.is_empty() {
            let space = self.id(b" ").ok_or_else(|| {
                Error::Input("the tokenizer has no \" \" piece for the dummy prefix".into())
            })?;
            tokens.push(space);
        }
        let mut buf: Vec<u8> = Vec::with_capacity(4);
        for (i, &c) in bytes.iter().enumerate() {
            if c & 0xC0 != 0x80 {
                buf.clear();
            }
            buf.push(c);
            let next_is_continuation = bytes.get(i + 1).is_some_and(|&n| n & 0xC0 == 0x80);
            if next_is_continuation && buf.len() < 4 {
                continue;
            }
            match self.id(&buf) {
                Some(id) => tokens.push(id),
                None => {
                    for &b in &buf {
                        let id = b as usize + 3;
                        if id >= self.len() {
                            return Err(Error::Input(format!(
                                "byte 0x{b:02X} of the prompt has no piece and no byte-fallback token (id {id} >= {} tokens)",
                                self.len()
                            )));
                        }
                        tokens.push(id);
                    }
                }
            }
            buf.clear();
        }
        let mut pair = Vec::new();
        loop {
            let mut best: Option<(usize, usize)> = None;
            let mut best_score = NO_SCORE;
            for i in 0..tokens.len().saturating_sub(1) {
                pair.clear();
                pair.extend_from_slice(&self.pieces[tokens[i]]);
                pair.extend_from_slice(&self.pieces[tokens[i + 1]]);
                if let Some(id) = self.id(&pair) {
                    if self.scores[id] > best_score {
                        best_score = self.scores[id];
                        best = Some((i, id));
                    }
                }
            }
            let Some((i, id)) = best else { break };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
        Ok(tokens)
    }

    /// The bytes `run.c` prints for `token` after `prev` (`decode` + `safe_printf`).
    pub fn decode_piece(&self, prev: usize, token: usize) -> Vec<u8> {
        let Some(mut piece) = self.pieces.get(token).map(Vec::as_slice) else {
            return Vec::new();
        };
        if prev == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        let byte = byte_piece(piece);
        let piece = match &byte {
            Some(b) => std::slice::from_ref(b),
            None => piece,
        };
        if let [b] = piece {
            // C `isprint || isspace` in the "C" locale.
            if !(b.is_ascii_graphic() || *b == b' ' || b"\t\n\x0b\x0c\r".contains(b)) {
                return Vec::new();
            }
        }
        piece.to_vec()
    }

    /// The text `run.c` prints for a sequence that starts with its first (fed) token:
    /// `decode(ids[t - 1], ids[t])` for every `t >= 1`, bytes made UTF-8 (invalid sequences
    /// become U+FFFD).
    pub fn decode(&self, ids: &[usize]) -> String {
        let mut out = Vec::new();
        for w in ids.windows(2) {
            out.extend(self.decode_piece(w[0], w[1]));
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `sscanf(piece, "<0x%02hhX>", &byte) == 1`: `<0x` and one or two hex digits.
fn byte_piece(piece: &[u8]) -> Option<u8> {
    let rest = piece.strip_prefix(b"<0x")?;
    let digits: Vec<u8> = rest
        .iter()
        .take(2)
        .take_while(|c| c.is_ascii_hexdigit())
        .copied()
        .collect();
    if digits.is_empty() {
        return None;
    }
    u8::from_str_radix(std::str::from_utf8(&digits).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(pieces: &[(&str, f32)]) -> Tokenizer {
        let mut b = 8i32.to_le_bytes().to_vec();
        for (p, s) in pieces {
            b.extend(s.to_le_bytes());
            b.extend((p.len() as i32).to_le_bytes());
            b.extend(p.as_bytes());
        }
        Tokenizer::parse(&b, pieces.len()).unwrap()
    }

    #[test]
    fn merges_by_score_and_falls_back_to_bytes() {
        // 0 unk, 1 BOS, 2 EOS, 3.. bytes 0x00.., then pieces.
        let mut p: Vec<(String, f32)> = vec![("<unk>".into(), 0.0), ("\n<s>\n".into(), 0.0)];
        p.push(("\n</s>\n".into(), 0.0));
        for b in 0..=255u8 {
            p.push((format!("<0x{b:02X}>"), 0.0));
        }
        let base = p.len();
        for (s, sc) in [
            (" ", -1.0),
            ("a", -2.0),
            ("b", -3.0),
            (" a", -5.0),
            ("ab", -4.0),
        ] {
            p.push((s.into(), sc));
        }
        let refs: Vec<(&str, f32)> = p.iter().map(|(s, f)| (s.as_str(), *f)).collect();
        let t = tok(&refs);
        // " a" (-5) and "ab" (-4) both apply to [" ", "a", "b"]: "ab" wins, then nothing
        // merges " " + "ab".
        assert_eq!(t.encode("ab").unwrap(), vec![1, base, base + 4]);
        // 'é' (2 bytes) has no piece: byte fallback.
        assert_eq!(t.encode("é").unwrap(), vec![1, base, 0xC3 + 3, 0xA9 + 3]);
        assert_eq!(t.encode("").unwrap(), vec![1]);
        // Decoding: leading space after BOS dropped, byte pieces raw, unprintable bytes dropped.
        assert_eq!(t.decode(&[1, base + 3, 0x41 + 3, 0x07 + 3]), "aA");
    }

    #[test]
    fn rejects_truncated_and_oversized_files() {
        let t = |b: &[u8], n| Tokenizer::parse(b, n).unwrap_err();
        assert_eq!(
            t(&[1, 0], 1),
            "truncated at byte 0 (file is 2 bytes): expected max_token_length"
        );
        let mut b = 4i32.to_le_bytes().to_vec();
        b.extend(0f32.to_le_bytes());
        b.extend(9i32.to_le_bytes());
        assert_eq!(
            t(&b, 1),
            "token 0 has length 9, outside 0..=4 (max_token_length)"
        );
    }
}
