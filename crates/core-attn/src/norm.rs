//! LayerNorm (integer-only). Being written.
