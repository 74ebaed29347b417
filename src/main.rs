//! The `cpvip` binary: parses the command line and hands over to the library.

fn main() {
    println!("cpvip {}", env!("CARGO_PKG_VERSION"));
}
