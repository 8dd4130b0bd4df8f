//! The `strongroom` binary.
fn main() {}
