//! f64 references of positional encodings. Being written.
