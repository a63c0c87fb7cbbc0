fn main() {
    // memory.x + OUT_DIR/model_consts.rs (TATN_MODEL overrides the default models).
    board_common::host::build(&["vit-tiny", "gpt2-tiny", "encdec-tiny", "llama2c-tiny"]);
}
