//! Positional encodings. Being written.
