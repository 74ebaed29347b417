//! `cpvip-lab`: command-line entry to the lab (demo, up/down/status/exec, bench).

fn main() {
    eprintln!("cpvip-lab: not yet implemented");
    std::process::exit(1);
}
