//! Embeds the test digits: see `../common/test_digits.rs`.
#[path = "../common/test_digits.rs"]
mod test_digits;

fn main() {
    test_digits::main();
}
