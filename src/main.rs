//! `terraform-provider-coiled`: the Terraform plugin binary. Terraform starts it; by hand,
//! `--debug` serves it for `TF_REATTACH_PROVIDERS`, and `--version` prints the version.

use std::process::ExitCode;
use std::sync::Arc;

use terraform_provider_coiled::provider::{ADDRESS, CoiledProvider, VERSION};
use tfplugin::{logging, serve};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version" || a == "-v") {
        eprintln!("terraform-provider-coiled {VERSION}");
        return ExitCode::SUCCESS;
    }
    let mode = if args.iter().any(|a| a == "--debug") {
        serve::Mode::Debug { address: ADDRESS.to_string() }
    } else {
        serve::Mode::Plugin
    };
    if let serve::Mode::Plugin = mode
        && std::env::var(serve::MAGIC_COOKIE_KEY).ok().as_deref() != Some(serve::MAGIC_COOKIE_VALUE)
    {
        eprintln!(
            "This is terraform-provider-coiled, a Terraform plugin: Terraform runs it for you.\n\
             Use it from a Terraform configuration (`terraform init`), or run it with --debug to\n\
             attach Terraform to it through TF_REATTACH_PROVIDERS."
        );
        return ExitCode::FAILURE;
    }
    logging::init("coiled", &["terraform_provider_coiled", "tfplugin"]);
    // Whatever RUST_BACKTRACE says, no backtrace may reach Terraform's output.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "provider panicked");
        eprintln!("terraform-provider-coiled: internal error: {info}");
    }));
    // One thread: each RPC does little work between network waits, and no task wakes another
    // thread.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("terraform-provider-coiled: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::serve(Arc::new(CoiledProvider::default()), mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("terraform-provider-coiled: {e}");
            ExitCode::FAILURE
        }
    }
}
