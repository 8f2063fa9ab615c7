//! Compiles Terraform's `tfplugin6.proto` and go-plugin's `go_plugin.proto` with a pure-Rust protobuf
//! compiler (no `protoc` needed). Only server stubs are generated: the plugin
//! serves, Terraform calls.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in ["tfplugin6.proto", "go_plugin.proto"] {
        println!("cargo:rerun-if-changed=../../proto/{file}");
    }
    let fds = protox::compile(["../../proto/tfplugin6.proto", "../../proto/go_plugin.proto"], ["../../proto"])?;
    tonic_build::configure()
        .build_client(false)
        .build_server(true)
        // These two comments hold indented text that rustdoc would run as Rust examples.
        .disable_comments(".tfplugin6.PlanResourceChange.Response.legacy_type_system")
        .disable_comments(".tfplugin6.ApplyResourceChange.Response.legacy_type_system")
        .compile_fds(fds)?;
    Ok(())
}
