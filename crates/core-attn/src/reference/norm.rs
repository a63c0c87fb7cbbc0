//! f64 references of LayerNorm. Being written.
