//! Compiles Terraform's `tfplugin6.proto` and go-plugin's `go_plugin.proto` with a pure-Rust
//! protobuf compiler (no `protoc` needed). Only server stubs are generated: the plugin serves,
//! Terraform calls.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in ["tfplugin6.proto", "go_plugin.proto"] {
        println!("cargo:rerun-if-changed=../../proto/{file}");
    }
    let fds = protox::compile(
        ["../../proto/tfplugin6.proto", "../../proto/go_plugin.proto"],
        ["../../proto"],
    )?;
    tonic_build::configure().build_client(false).build_server(true).compile_fds(fds)?;
    // Two comments (on `legacy_type_system`) hold text indented as a Markdown code block, which
    // rustdoc would compile and run as a Rust example: their banner is unindented.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("tfplugin6.rs");
    let code = std::fs::read_to_string(&out)?;
    std::fs::write(&out, code.replace("///      ====", "/// ===="))?;
    Ok(())
}
