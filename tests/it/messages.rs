//! A server's words in Terraform's output: reasons and names reach the terminal with their control
//! characters escaped, so an answer cannot recolour, move or rewrite what a user reads.

use crate::common::{Scenario, clis};

#[test]
fn control_characters_in_a_servers_reason_are_escaped() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  name      = \"ansi\"\n  software  = \"dask\"\n  n_workers = 0\n  tags      = { \"coiled-local/fail\" = \"\\u001b[31mno capacity\\u001b[0m\\r\\u0007 done\" }\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = out.all();
        assert_ne!(out.code, 0, "{text}");
        assert!(text.contains("no capacity"), "the reason is shown: {text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{7}'),
            "{}: raw control characters: {text:?}",
            cli.version
        );
        assert!(text.contains("\\u{1b}[31m"), "escaped, visibly: {text}");
    }
}
