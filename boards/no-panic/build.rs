fn main() {
    // memory.x + OUT_DIR/model_consts.rs: the same models as the Cortex-M4 firmware, so that the
    // binary also runs (under QEMU mps2-an386) and exits 0 only if every model ran.
    board_common::host::build(&["vit-tiny", "gpt2-tiny", "encdec-tiny", "llama2c-tiny"]);
}
