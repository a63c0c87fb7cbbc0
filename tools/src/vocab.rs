//! Character vocabularies of character-level LMs (`vocab.json`).
//!
//! A trained character model ships `vocab.json` next to `config.json`, in one of two forms:
//! - a JSON array of strings: entry `i` is the text of id `i` (`["\n", " ", "a", ...]`);
//! - a JSON object id → string (`{"0": "\n", "1": " ", ...}`); ids may have gaps.
//!
//! Entries of exactly one character (Unicode scalar value) are what text is encoded with: each
//! character of a text maps to the one id whose entry is that character. Longer entries
//! (special tokens such as `"<eos>"`) and ids without an entry are only ever decoded; an id
//! without an entry decodes to U+FFFD. Two ids with the same one-character entry, an empty
//! entry, a non-string entry, or an id ≥ the model's vocabulary size are errors.
//!
//! For a blob, the vocabulary is `--vocab FILE`, else `<blob>.vocab.json` next to the blob
//! (`tools convert` writes it there when the checkpoint has a `vocab.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// A character vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    /// Text of each id (`None`: no entry).
    entries: Vec<Option<String>>,
    /// One-character entries → id.
    chars: BTreeMap<char, usize>,
    /// The file it came from (for messages).
    path: PathBuf,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Vocab {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Vocab {
    /// Reads and checks a `vocab.json` for a model with `vocab_size` ids.
    pub fn read(path: &Path, vocab_size: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path, vocab_size)
    }

    /// Parses `vocab.json` text (see the module docs).
    pub fn parse(text: &str, path: &Path, vocab_size: usize) -> Result<Self> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| bad(path, format!("bad JSON: {e}")))?;
        let mut pairs: Vec<(usize, &Value)> = Vec::new();
        match &v {
            Value::Array(a) => pairs.extend(a.iter().enumerate()),
            Value::Object(o) => {
                for (k, x) in o {
                    let id = k.parse::<usize>().map_err(|_| {
                        bad(
                            path,
                            format!("key {k:?} is not a token id (expected \"0\", \"1\", ...)"),
                        )
                    })?;
                    pairs.push((id, x));
                }
            }
            _ => return Err(bad(path, "expected a JSON array or an object id -> string")),
        }
        let mut entries: Vec<Option<String>> = vec![None; vocab_size];
        let mut chars = BTreeMap::new();
        for (id, x) in pairs {
            let s = x
                .as_str()
                .ok_or_else(|| bad(path, format!("entry of id {id} is not a string: {x}")))?;
            if id >= vocab_size {
                return Err(bad(
                    path,
                    format!("id {id} is out of range (model vocab_size {vocab_size})"),
                ));
            }
            if s.is_empty() {
                return Err(bad(path, format!("entry of id {id} is empty")));
            }
            let mut it = s.chars();
            if let (Some(c), None) = (it.next(), it.next()) {
                if let Some(other) = chars.insert(c, id) {
                    return Err(bad(
                        path,
                        format!("character {c:?} is both id {other} and id {id}"),
                    ));
                }
            }
            entries[id] = Some(s.to_string());
        }
        if chars.is_empty() {
            return Err(bad(path, "no one-character entries"));
        }
        Ok(Vocab {
            entries,
            chars,
            path: path.to_path_buf(),
        })
    }

    /// The text of each id (`None`: no entry), in id order.
    pub fn entries(&self) -> impl Iterator<Item = Option<&str>> {
        self.entries.iter().map(|e| e.as_deref())
    }

    /// The vocabulary next to a checkpoint (`DIR/vocab.json`), if present.
    pub fn for_checkpoint(dir: &Path, vocab_size: usize) -> Result<Option<Self>> {
        let p = dir.join("vocab.json");
        if p.is_file() {
            Ok(Some(Self::read(&p, vocab_size)?))
        } else {
            Ok(None)
        }
    }

    /// The path `<blob>.vocab.json`.
    pub fn blob_sidecar(blob: &Path) -> PathBuf {
        let mut s = blob.as_os_str().to_os_string();
        s.push(".vocab.json");
        PathBuf::from(s)
    }

    /// `explicit` if given, else `<blob>.vocab.json` if present.
    pub fn for_blob(
        blob: &Path,
        explicit: Option<&Path>,
        vocab_size: usize,
    ) -> Result<Option<Self>> {
        match explicit {
            Some(p) => Ok(Some(Self::read(p, vocab_size)?)),
            None => {
                let p = Self::blob_sidecar(blob);
                if p.is_file() {
                    Ok(Some(Self::read(&p, vocab_size)?))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Encodes `text` character by character; an unknown character is an error naming it and
    /// its position (0-based, in characters).
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.chars.get(&c).copied().ok_or_else(|| {
                    Error::Input(format!(
                        "character {c:?} at position {i} is not in the vocabulary ({})",
                        self.path.display()
                    ))
                })
            })
            .collect()
    }

    /// Decodes ids (ids without an entry become U+FFFD).
    pub fn decode(&self, ids: &[usize]) -> String {
        ids.iter()
            .map(|&i| {
                self.entries
                    .get(i)
                    .and_then(Option::as_deref)
                    .unwrap_or("\u{FFFD}")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_and_object_forms() {
        let p = Path::new("v.json");
        let a = Vocab::parse(r#"["a", "b", "<eos>"]"#, p, 4).unwrap();
        assert_eq!(a.encode("abba").unwrap(), [0, 1, 1, 0]);
        assert_eq!(a.decode(&[0, 2, 3]), "a<eos>\u{FFFD}");
        let o = Vocab::parse(r#"{"3": "x", "0": "\n"}"#, p, 4).unwrap();
        assert_eq!(o.encode("x\nx").unwrap(), [3, 0, 3]);
        let e = o.encode("xy").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid input: character 'y' at position 1 is not in the vocabulary (v.json)"
        );
    }

    #[test]
    fn bad_vocabularies() {
        let p = Path::new("v.json");
        let err = |t: &str| Vocab::parse(t, p, 3).unwrap_err().to_string();
        assert_eq!(
            err(r#"["a","a"]"#),
            "v.json: invalid vocabulary: character 'a' is both id 0 and id 1"
        );
        assert_eq!(
            err(r#"["a","b","c","d"]"#),
            "v.json: invalid vocabulary: id 3 is out of range (model vocab_size 3)"
        );
        assert_eq!(
            err(r#"{"x": "a"}"#),
            "v.json: invalid vocabulary: key \"x\" is not a token id (expected \"0\", \"1\", ...)"
        );
        assert_eq!(
            err("3"),
            "v.json: invalid vocabulary: expected a JSON array or an object id -> string"
        );
    }
}
