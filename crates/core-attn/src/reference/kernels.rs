//! f64 references of linear, softmax, attention and blocks.
