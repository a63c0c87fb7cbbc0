//! Embeds the model and its test images: see `../shared/build_model.rs`.
#[path = "../shared/build_model.rs"]
mod build_model;

fn main() {
    build_model::main();
}
