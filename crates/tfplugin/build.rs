//! Compiles `proto/go_plugin.proto` with a pure-Rust protobuf compiler (no `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto/go_plugin.proto");
    let fds = protox::compile(["../../proto/go_plugin.proto"], ["../../proto"])?;
    tonic_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
