//! `ksc`: the KeyServer pipeline steps from the command line.
fn main() {}
