//! Embeds the test digits: see `../shared/test_digits.rs`.
#[path = "../shared/test_digits.rs"]
mod test_digits;

fn main() {
    test_digits::main();
}
