//! Registry documentation generated from the schema: `docs/index.md`, `docs/resources/*.md` and
//! `docs/data-sources/*.md`, in the layout and style of the Terraform Registry. Prose lives in
//! `templates/` (with `{{ schema }}`, `{{ description }}`, `{{ examples }}`, `{{ import }}` and
//! `{{ example "path" }}` placeholders); attribute reference sections come from the schema descriptions;
//! examples come from `examples/`. `cargo run --bin docgen` writes the pages; a test fails when they
//! are stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tfplugin::framework::Provider;
use tfplugin::schema::{AfterImport, Attribute, Block, Nesting, Presence, Schema};
use tfplugin::value::Type;

/// One generated page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Path relative to the repository root.
    pub path: PathBuf,
    /// Markdown.
    pub content: String,
}

/// Generates every page of `provider` from the templates and examples under `root`.
pub fn generate(provider: &dyn Provider, root: &Path) -> Result<Vec<Page>, String> {
    let mut pages = Vec::new();
    let name = provider.name();
    let ctx = Context { root, kind: "", type_name: name.to_string() };
    let index = render_template(&read(root, "templates/index.md.tmpl")?, &ctx, &provider.schema())?;
    pages.push(Page { path: "docs/index.md".into(), content: index });
    for (kind, dir, schemas) in [
        (
            "resources",
            "resources",
            provider.resources().iter().map(|r| (r.type_name(), r.schema())).collect::<Vec<_>>(),
        ),
        (
            "data-sources",
            "data-sources",
            provider.data_sources().iter().map(|d| (d.type_name(), d.schema())).collect::<Vec<_>>(),
        ),
    ] {
        for (type_name, schema) in schemas {
            let short = type_name.strip_prefix(&format!("{name}_")).unwrap_or(type_name);
            let ctx = Context { root, kind, type_name: type_name.to_string() };
            let tmpl_path = format!("templates/{dir}/{short}.md.tmpl");
            let tmpl = if root.join(&tmpl_path).exists() {
                read(root, &tmpl_path)?
            } else {
                default_template(kind)
            };
            let content = render_template(&tmpl, &ctx, &schema)?;
            pages.push(Page { path: PathBuf::from(format!("docs/{dir}/{short}.md")), content });
        }
    }
    Ok(pages)
}

struct Context<'a> {
    root: &'a Path,
    kind: &'a str,
    type_name: String,
}

fn read(root: &Path, rel: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(rel)).map_err(|e| format!("{rel}: {e}"))
}

fn default_template(kind: &str) -> String {
    let subcategory = if kind == "resources" { "Resource" } else { "Data Source" };
    format!(
        "---\npage_title: \"{{{{ type_name }}}} {subcategory} - coiled\"\ndescription: |-\n  {{{{ \
            summary }}}}\n---\n\n# {{{{ type_name }}}} ({subcategory})\n\n{{{{ description \
            }}}}\n\n## Example Usage\n\n{{{{ examples }}}}\n\n{{{{ schema }}}}\n{{{{ import }}}}"
    )
}

fn render_template(tmpl: &str, ctx: &Context<'_>, schema: &Schema) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = tmpl;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or("unclosed {{ in template")? + start;
        let directive = rest[start + 2..end].trim();
        out.push_str(&expand(directive, ctx, schema)?);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    // One trailing newline, no trailing spaces.
    let mut text: String = out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    Ok(text.trim_end().to_string() + "\n")
}

fn examples_dir(ctx: &Context<'_>) -> PathBuf {
    ctx.root.join("examples").join(ctx.kind).join(&ctx.type_name)
}

fn fenced(lang: &str, text: &str) -> String {
    format!("```{lang}\n{}\n```\n", text.trim_end())
}

fn expand(directive: &str, ctx: &Context<'_>, schema: &Schema) -> Result<String, String> {
    match directive {
        "type_name" => Ok(ctx.type_name.clone()),
        "summary" => {
            Ok(schema.block.description.split("\n\n").next().unwrap_or_default().to_string())
        }
        "description" => Ok(schema.block.description.to_string()),
        "schema" => Ok(render_schema(&schema.block)),
        "changes" => Ok(render_changes(&schema.block)),
        "examples" => {
            let dir = examples_dir(ctx);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    (n.starts_with("resource") || n.starts_with("data-source"))
                        && n.ends_with(".tf")
                })
                .collect();
            files.sort();
            let mut s = String::new();
            for f in files {
                let text =
                    std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
                s.push_str(&fenced("terraform", &text));
                s.push('\n');
            }
            Ok(s)
        }
        "import" => {
            let dir = examples_dir(ctx);
            let sh = dir.join("import.sh");
            let block = dir.join("import-by-string-id.tf");
            if !sh.exists() && !block.exists() {
                return Ok(String::new());
            }
            let mut s = String::from("## Import\n\n");
            if block.exists() {
                s.push_str("In Terraform 1.5 and later, use an `import` block:\n\n");
                s.push_str(&fenced(
                    "terraform",
                    &std::fs::read_to_string(&block).map_err(|e| e.to_string())?,
                ));
                s.push('\n');
            }
            let identity = dir.join("import-by-identity.tf");
            if identity.exists() {
                s.push_str(
                    "In Terraform 1.12 and later, the block can name the resource's \
                    identity instead of an ID:\n\n",
                );
                s.push_str(&fenced(
                    "terraform",
                    &std::fs::read_to_string(&identity).map_err(|e| e.to_string())?,
                ));
                s.push('\n');
            }
            if sh.exists() {
                s.push_str("With `terraform import`:\n\n");
                s.push_str(&fenced(
                    "shell",
                    &std::fs::read_to_string(&sh).map_err(|e| e.to_string())?,
                ));
            }
            Ok(s)
        }
        d if d.starts_with("example ") => {
            let rel = d["example ".len()..].trim().trim_matches('"');
            Ok(fenced("terraform", &read(ctx.root, rel)?))
        }
        other => Err(format!("unknown template directive {{{{ {other} }}}}")),
    }
}

fn type_label(t: &Type) -> String {
    match t {
        Type::String => "String".into(),
        Type::Number => "Number".into(),
        Type::Bool => "Boolean".into(),
        Type::Dynamic => "Dynamic".into(),
        Type::List(e) => format!("List of {}", type_label(e)),
        Type::Set(e) => format!("Set of {}", type_label(e)),
        Type::Map(e) => format!("Map of {}", type_label(e)),
        Type::Object(_) => "Object".into(),
        Type::Tuple(_) => "Tuple".into(),
    }
}

/// What a change of each argument does, from the schema: replace the resource, update it in place,
/// change state alone, or (write-only) nothing until an update sends it. `timeouts` is Terraform's
/// own, never sent.
pub fn render_changes(block: &Block) -> String {
    let mut rows: [(&str, Vec<&str>); 4] = [
        ("Replaces the resource: the plan destroys it and creates another", Vec::new()),
        ("Updates it in place, through the API", Vec::new()),
        ("Changes Terraform's state only: the apply writes nothing to the API", Vec::new()),
        (
            "Never stored (write-only), so a change alone plans nothing: the next update sends \
                it, which a change of its `_wo_version` asks for",
            Vec::new(),
        ),
    ];
    for a in block.attributes.iter().filter(|a| a.configurable()) {
        let row = if a.requires_replace {
            0
        } else if a.write_only {
            3
        } else if a.state_only {
            2
        } else {
            1
        };
        rows[row].1.push(a.name);
    }
    for b in &block.blocks {
        let row = if b.requires_replace {
            0
        } else if b.state_only {
            2
        } else {
            1
        };
        rows[row].1.push(b.name);
    }
    let mut out = String::from("## What a change does\n\n| A change of | |\n|---|---|\n");
    for (what, names) in rows {
        push_row(&mut out, names, what);
    }
    out.push_str(&render_after_import(block));
    out
}

/// A table row naming `names` (sorted, in code style) beside `what`; none when there are no names.
fn push_row(out: &mut String, mut names: Vec<&str>, what: &str) {
    if names.is_empty() {
        return;
    }
    names.sort_unstable();
    let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let _ = writeln!(out, "| {} | {what} |", list.join(", "));
}

/// What the first plan after an import does with each attribute an import cannot simply read,
/// from the schema's declarations; empty when the import reads every one.
fn render_after_import(block: &Block) -> String {
    let rows = [
        (
            AfterImport::FromConfiguration,
            "Coiled never reports it: the first plan after an import takes the configuration's \
                value, in place",
        ),
        (
            AfterImport::FromConfigurationIfUnread,
            "Coiled may not report it: where the import read none, the first plan takes the \
                configuration's value, in place",
        ),
        (
            AfterImport::SentAgain,
            "Coiled never reports it: the first apply after an import sends the configuration's \
                value again",
        ),
        (
            AfterImport::ComparedByMeaning,
            "Compared with the configuration by meaning: the first plan takes the configuration's \
                spelling of the same value, in place",
        ),
    ];
    let mut out = String::new();
    for (rule, what) in rows {
        let attributes = block.attributes.iter().filter(|a| a.after_import == rule).map(|a| a.name);
        let blocks = block.blocks.iter().filter(|b| b.after_import == rule).map(|b| b.name);
        push_row(&mut out, attributes.chain(blocks).collect(), what);
    }
    if out.is_empty() {
        return out;
    }
    format!(
        "\nAn import (`terraform import` or an `import` block) reads every other argument from \
            Coiled, and a configuration that differs from what it read plans a change. These it \
            cannot read as they are:\n\n| After an import | |\n|---|---|\n{out}"
    )
}

/// Renders a block's attribute reference, with nested schemas after it.
pub fn render_schema(block: &Block) -> String {
    let mut out = String::from("## Schema\n");
    let mut nested: Vec<(String, String, Block)> = Vec::new();
    render_block(&mut out, block, "", &mut nested, 3);
    while !nested.is_empty() {
        let (anchor, path, b) = nested.remove(0);
        let _ = write!(out, "\n<a id=\"{anchor}\"></a>\n### Nested Schema for `{path}`\n");
        let mut more = Vec::new();
        render_block(&mut out, &b, &format!("{path}."), &mut more, 0);
        nested.extend(more);
    }
    out
}

fn render_block(
    out: &mut String,
    block: &Block,
    prefix: &str,
    nested: &mut Vec<(String, String, Block)>,
    heading: usize,
) {
    for (title, presences) in [
        ("Required", &[Presence::Required][..]),
        ("Optional", &[Presence::Optional, Presence::OptionalComputed][..]),
        ("Read-Only", &[Presence::Computed][..]),
    ] {
        let attrs: Vec<&Attribute> =
            block.attributes.iter().filter(|a| presences.contains(&a.presence)).collect();
        let blocks: Vec<_> = if title == "Optional" {
            block.blocks.iter().filter(|b| b.min_items == 0).collect()
        } else if title == "Required" {
            block.blocks.iter().filter(|b| b.min_items > 0).collect()
        } else {
            Vec::new()
        };
        if attrs.is_empty() && blocks.is_empty() {
            continue;
        }
        if heading > 0 {
            let _ = write!(out, "\n{} {title}\n\n", "#".repeat(heading));
        } else {
            let _ = write!(out, "\n{title}:\n\n");
        }
        let mut lines: Vec<(String, String)> =
            attrs.into_iter().map(|a| attribute_line(a, prefix, nested)).collect();
        lines.extend(blocks.into_iter().map(|b| block_line(b, prefix, nested)));
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, l) in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
}

/// One attribute's line (its name, for sorting, and the Markdown), queueing its nested schema.
fn attribute_line(
    a: &Attribute,
    prefix: &str,
    nested: &mut Vec<(String, String, Block)>,
) -> (String, String) {
    let mut tags = Vec::new();
    let label = match &a.nested {
        Some((nesting, inner)) => {
            let anchor = format!("nestedatt--{}{}", prefix.replace('.', "--"), a.name);
            nested.push((
                anchor.clone(),
                format!("{prefix}{}", a.name),
                Block { attributes: inner.clone(), blocks: vec![], description: "" },
            ));
            let kind = match nesting {
                Nesting::Single => "Attributes",
                Nesting::List => "Attributes List",
                Nesting::Set => "Attributes Set",
            };
            tags.push(kind.to_string());
            format!(" (see [below for nested schema](#{anchor}))")
        }
        None => {
            tags.push(type_label(&a.ty));
            String::new()
        }
    };
    if a.sensitive {
        tags.push("Sensitive".into());
    }
    if a.write_only {
        tags.push("[Write-only](https://developer.hashicorp.com/terraform/language/resources/ephemeral#write-only-arguments)".into());
    }
    if a.deprecated.is_some() {
        tags.push("Deprecated".into());
    }
    let mut desc = a.description.to_string();
    if a.requires_replace {
        desc.push_str(" Changing it replaces the resource.");
    }
    if a.write_only {
        desc.push_str(" Requires Terraform 1.11 or later.");
    }
    (a.name.to_string(), format!("- `{}` ({}) {desc}{label}", a.name, tags.join(", ")))
}

/// One nested block's line (its name, for sorting, and the Markdown), queueing its schema.
fn block_line(
    b: &tfplugin::schema::NestedBlock,
    prefix: &str,
    nested: &mut Vec<(String, String, Block)>,
) -> (String, String) {
    let anchor = format!("nestedblock--{}{}", prefix.replace('.', "--"), b.name);
    nested.push((anchor.clone(), format!("{prefix}{}", b.name), b.block.clone()));
    let kind = match b.nesting {
        Nesting::Single => "Block",
        Nesting::List => "Block List",
        Nesting::Set => "Block Set",
    };
    let max = if b.max_items > 0 && b.nesting != Nesting::Single {
        format!(", Max: {}", b.max_items)
    } else {
        String::new()
    };
    let mut desc = b.block.description.to_string();
    if b.requires_replace {
        desc.push_str(" Changing it replaces the resource.");
    }
    (
        b.name.to_string(),
        format!("- `{}` ({kind}{max}) {desc} (see [below for nested schema](#{anchor}))", b.name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfplugin::schema::NestedBlock;

    #[test]
    fn the_changes_table_sorts_arguments_by_what_a_change_does() {
        let timeouts =
            |name| NestedBlock::new(name, Nesting::Single, Block::default()).state_only();
        let block = Block {
            attributes: vec![
                Attribute::required("name", Type::String, "").requires_replace(),
                Attribute::optional("size", Type::Number, "").import_from_configuration_if_unread(),
                Attribute::optional("wait", Type::Bool, "")
                    .state_only()
                    .import_from_configuration(),
                Attribute::optional("key_wo", Type::String, "").write_only(),
                Attribute::computed("id", Type::String, ""),
            ],
            blocks: vec![
                timeouts("timeouts"),
                NestedBlock::new("options", Nesting::Single, Block::default()),
            ],
            description: "",
        };
        let md = render_changes(&block);
        assert!(md.contains("| `name` | Replaces"), "{md}");
        assert!(md.contains("| `options`, `size` | Updates it in place"), "{md}");
        assert!(md.contains("| `timeouts`, `wait` | Changes Terraform's state only"), "{md}");
        assert!(md.contains("| `key_wo` | Never stored (write-only)"), "{md}");
        assert!(!md.contains("`id`"), "{md}");
        assert!(md.contains("| `wait` | Coiled never reports it"), "{md}");
        assert!(md.contains("| `size` | Coiled may not report it"), "{md}");
        assert!(!md.contains("by meaning"), "{md}");
        let read_only = Block {
            attributes: vec![Attribute::required("name", Type::String, "")],
            ..Block::default()
        };
        assert!(
            !render_changes(&read_only).contains("After an import"),
            "an import that reads everything has no table"
        );
    }

    #[test]
    fn schema_sections_and_nested_anchors() {
        let block = Block {
            attributes: vec![
                Attribute::required("backend", Type::String, "Cloud."),
                Attribute::optional("secret", Type::String, "Secret.").sensitive().write_only(),
                Attribute::computed("id", Type::String, "Id."),
            ],
            blocks: vec![NestedBlock::new(
                "ingress",
                Nesting::Set,
                Block {
                    attributes: vec![Attribute::required("cidr", Type::String, "Block.")],
                    blocks: vec![],
                    description: "A rule.",
                },
            )],
            description: "",
        };
        let md = render_schema(&block);
        assert!(md.contains("### Required\n\n- `backend` (String) Cloud."), "{md}");
        assert!(md.contains("- `secret` (String, Sensitive, [Write-only]"), "{md}");
        assert!(md.contains("- `ingress` (Block Set) A rule. (see [below for nested schema](#nestedblock--ingress))"), "{md}");
        assert!(md.contains("### Read-Only\n\n- `id` (String) Id."), "{md}");
        assert!(
            md.contains(
                "<a id=\"nestedblock--ingress\"></a>\n### Nested Schema for \
                `ingress`\n\nRequired:\n\n- `cidr` (String) Block."
            ),
            "{md}"
        );
    }
}
