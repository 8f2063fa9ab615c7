//! Ingress blocks as both resources use them: the schema, parsing a configuration into canonical
//! rules with diagnostics, the wire form, and the state form that keeps the user's spelling when it
//! means the same as what the server reports (no perpetual diff over `10.1.0.2/16` vs
//! `10.1.0.0/16`).

use std::collections::BTreeSet;

use crate::api::IngressRule;
use coiled_firewall::{self, Rule};
use tfplugin::diag::Diagnostics;
use tfplugin::schema::{Attribute, Block, NestedBlock, Nesting, Presence};
use tfplugin::value::{AttrPath, Type, Value};

/// Most rules one configuration may hold; beyond this a security group cannot hold them either.
pub const MAX_RULES: usize = 100;

/// The `ingress` block: repeated, order-free.
pub fn ingress_block(name: &'static str, description: &'static str) -> NestedBlock {
    let ports = "TCP ports to open, each from 1 to 65535; at least one. Order does not matter.";
    let cidr = "Source CIDR block, IPv4 or IPv6 (`10.1.0.0/16`, `2001:db8::/32`). Compared in canonical \
        form; a block with host bits set (`10.1.0.2/16`) is accepted with a warning and sent as its \
        network address.";
    let attributes = vec![
        Attribute::required("ports", Type::set(Type::Number), ports),
        Attribute::required("cidr", Type::String, cidr),
    ];
    NestedBlock::new(name, Nesting::Set, Block { attributes, blocks: vec![], description })
}

/// The computed `firewall_rules` attribute: one row per (port, source).
pub fn firewall_rules_attribute(name: &'static str, description: &'static str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::List,
        vec![
            Attribute::computed("protocol", Type::String, "Always `tcp`."),
            Attribute::computed("port", Type::Number, "The open port."),
            Attribute::computed("source", Type::String, "The source CIDR block, canonical."),
        ],
        Presence::Computed,
        description,
    )
}

/// The `acknowledge_world_open_ingress` attribute that silences the whole-internet warning.
pub fn acknowledge_attribute(name: &'static str, _field_doc: &'static str) -> Attribute {
    Attribute::optional(
        name,
        Type::Bool,
        "Set to `true` to acknowledge ingress rules open to the whole internet (`0.0.0.0/0` or \
            `::/0`) and silence the warning about them. Has no effect on what is sent to Coiled.",
    )
    .state_only()
}

/// Ingress rules, merged (one rule per CIDR block) and canonical: every constructor merges, so
/// every rule set the provider holds has that form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet(Vec<Rule>);

impl RuleSet {
    /// The rules, merged.
    pub fn new(rules: &[Rule]) -> RuleSet {
        RuleSet(coiled_firewall::merge(rules).0)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether both open the same ports to the same blocks.
    pub fn same_as(&self, other: &RuleSet) -> bool {
        coiled_firewall::same_rules(&self.0, &other.0)
    }

    /// The server's wire rules (invalid ones are skipped).
    pub fn from_wire(rules: &[IngressRule]) -> RuleSet {
        RuleSet::new(
            &rules
                .iter()
                .filter_map(|r| coiled_firewall::rule_from_wire(&r.ports, &r.cidr))
                .collect::<Vec<_>>(),
        )
    }

    /// The rules of an `ingress` value this provider stored in state, which it validated before:
    /// `None` when it holds none, or is not known.
    pub fn of_state(ingress: &Value) -> Option<RuleSet> {
        match read(ingress, &Reading::stored(), &mut Diagnostics::new()) {
            Parsed::Rules(r) if !r.is_empty() => Some(r),
            _ => None,
        }
    }

    /// Coiled's wire format (`[{ports, cidr}]`).
    pub fn to_wire(&self) -> Vec<crate::api::IngressOut> {
        self.0
            .iter()
            .map(|r| crate::api::IngressOut {
                ports: r.ports.iter().copied().collect(),
                cidr: r.cidr.to_string(),
            })
            .collect()
    }

    /// The `firewall_rules` value: one row per (port, source).
    pub fn rows_value(&self) -> Value {
        Value::List(
            coiled_firewall::firewall_rows(&self.0)
                .into_iter()
                .map(|r| {
                    Value::object([
                        ("protocol", Value::string(r.protocol)),
                        ("port", Value::int(i64::from(r.port))),
                        ("source", Value::string(r.source)),
                    ])
                })
                .collect(),
        )
    }

    /// The value of an `ingress` set holding these rules: one element per CIDR block.
    pub fn set_value(&self) -> Value {
        Value::Set(self.objects())
    }

    /// The rules as `ingress` objects (`cidr`, `ports`), in canonical order.
    pub fn objects(&self) -> Vec<Value> {
        let ports =
            |r: &Rule| Value::Set(r.ports.iter().map(|p| Value::int(i64::from(*p))).collect());
        let object = |r: &Rule| {
            Value::object([("cidr", Value::string(r.cidr.to_string())), ("ports", ports(r))])
        };
        self.0.iter().map(object).collect()
    }
}

/// How one reading of an `ingress` value reports: where it points, and whether it warns.
pub struct Reading {
    /// The attribute path of the `ingress` blocks.
    pub path: AttrPath,
    /// Whether `acknowledge_world_open_ingress` is set.
    pub acknowledged: bool,
    /// Whether to warn about valid rules (host bits, merged duplicates, whole-internet sources):
    /// only validation does, so that each warning shows once.
    pub warnings: bool,
}

impl Reading {
    /// A configuration's or plan's `ingress` at `path`: errors only.
    pub fn at(path: AttrPath) -> Reading {
        Reading { path, acknowledged: true, warnings: false }
    }

    /// A validation's reading: errors and warnings.
    pub fn validating(path: AttrPath, acknowledged: bool) -> Reading {
        Reading { path, acknowledged, warnings: true }
    }

    /// A value from state, which was validated when it was planned.
    fn stored() -> Reading {
        Reading::at(AttrPath::root())
    }
}

/// The outcome of reading ingress blocks from a configuration.
pub enum Parsed {
    /// Every value known and valid: the canonical rules.
    Rules(RuleSet),
    /// Some value is unknown until apply; nothing to judge yet beyond what was reported.
    Unknown,
    /// Errors were reported.
    Invalid,
}

/// A short description of one block for messages: `the ingress block with cidr "10.0.0.0/8" and
/// ports [22]`.
///
/// Diagnostics about a block name it this way and point at `ingress` itself: Terraform maps an
/// index into a set of blocks to the n-th block in the file, but set elements reach the provider in
/// cty's own order, so an index would highlight the wrong block.
fn describe(element: &Value) -> String {
    let cidr = element
        .get("cidr")
        .and_then(Value::as_str)
        .map(|c| format!("cidr {c:?}"))
        .unwrap_or_else(|| "a cidr not yet known".into());
    let ports: Vec<String> = element
        .get("ports")
        .and_then(Value::as_elements)
        .unwrap_or_default()
        .iter()
        .map(|p| p.as_number().map(ToString::to_string).unwrap_or_else(|| "?".into()))
        .collect();
    format!("the ingress block with {cidr} and ports [{}]", ports.join(", "))
}

/// Reads `ingress` blocks (a set of `{cidr, ports}` objects), reporting every problem with its
/// attribute path, and warnings as `how` asks.
pub fn read(value: &Value, how: &Reading, diags: &mut Diagnostics) -> Parsed {
    let (path, acknowledged, warn) = (&how.path, how.acknowledged, how.warnings);
    let elements = match value {
        Value::Null => return Parsed::Rules(RuleSet::default()),
        Value::Unknown => return Parsed::Unknown,
        v => v.as_elements().unwrap_or_default(),
    };
    if elements.len() > MAX_RULES {
        diags.error_at(
            path.clone(),
            "Too Many Ingress Rules",
            format!(
                "{} ingress blocks are configured; at most {MAX_RULES} are allowed. Merge \
                rules that share a CIDR block, or use a wider block.",
                elements.len()
            ),
        );
        return Parsed::Invalid;
    }
    let mut reader = Reader { path, warn, diags, unknown: false, invalid: false };
    let mut rules = Vec::new();
    for element in elements {
        if element.is_unknown() {
            reader.unknown = true;
            continue;
        }
        let cidr = reader.cidr(element);
        let ports = reader.ports(element);
        if let (Some(c), Some(p)) = (cidr, ports)
            && !p.is_empty()
        {
            rules.push(Rule { cidr: c.net, ports: p });
        }
    }
    let (unknown, invalid) = (reader.unknown, reader.invalid);
    if invalid {
        return Parsed::Invalid;
    }
    if warn {
        warn_about(&rules, path, acknowledged, diags);
    }
    if unknown { Parsed::Unknown } else { Parsed::Rules(RuleSet::new(&rules)) }
}

/// One parse's place, settings and findings.
struct Reader<'a> {
    path: &'a AttrPath,
    warn: bool,
    diags: &'a mut Diagnostics,
    unknown: bool,
    invalid: bool,
}

impl Reader<'_> {
    /// An error about the block `element`: "In <the block>: <rest>".
    fn error(&mut self, element: &Value, summary: &str, rest: &str) {
        let detail = format!("In {}: {rest}", describe(element));
        self.diags.error_at(self.path.clone(), summary, detail);
        self.invalid = true;
    }

    /// The block's `cidr`, canonical; `None` when unknown or wrong (reported).
    fn cidr(&mut self, element: &Value) -> Option<coiled_firewall::Cidr> {
        match element.get("cidr").unwrap_or(&Value::Null) {
            Value::Unknown => {
                self.unknown = true;
                None
            }
            Value::String(text) => match coiled_firewall::parse_cidr(text) {
                Ok(c) => {
                    if c.had_host_bits && self.warn {
                        self.diags.warning_at(
                            self.path.clone(),
                            "CIDR Block Has Host Bits Set",
                            format!(
                                "In {}: {text:?} has host bits set; it is the block {}, which \
                                is what Coiled will be sent. Did you mean \"{}\"?",
                                describe(element),
                                c.canonical(),
                                c.canonical()
                            ),
                        );
                    }
                    Some(c)
                }
                Err(e) => {
                    self.error(element, "Invalid CIDR Block", &format!("{e}."));
                    None
                }
            },
            _ => {
                let rest = "each ingress block needs a `cidr`, e.g. \"10.1.0.0/16\".";
                self.error(element, "Missing CIDR Block", rest);
                None
            }
        }
    }

    /// The block's `ports`; `None` when unknown or missing (reported).
    fn ports(&mut self, element: &Value) -> Option<BTreeSet<u16>> {
        let items = match element.get("ports").unwrap_or(&Value::Null) {
            Value::Unknown => {
                self.unknown = true;
                return None;
            }
            Value::Null => {
                let rest = "`ports` must list at least one TCP port.";
                self.error(element, "Missing Ports", rest);
                return None;
            }
            v => v.as_elements().unwrap_or_default(),
        };
        if items.is_empty() {
            let rest = "`ports` is empty; list at least one TCP port from 1 to 65535.";
            self.error(element, "No Ports", rest);
        }
        let mut set = BTreeSet::new();
        for item in items {
            match item {
                Value::Unknown => self.unknown = true,
                Value::Number(n) => match coiled_firewall::parse_port(n.as_str()) {
                    Ok(p) => {
                        set.insert(p);
                    }
                    Err(e) => self.error(element, "Invalid Port", &format!("{e}.")),
                },
                _ => self.error(element, "Invalid Port", "ports must be numbers."),
            }
        }
        Some(set)
    }
}

/// Warnings about valid rules: blocks merged because they repeat a CIDR, and ports open to the
/// world.
fn warn_about(rules: &[Rule], path: &AttrPath, acknowledged: bool, diags: &mut Diagnostics) {
    let (_, repeated) = coiled_firewall::merge(rules);
    for net in repeated {
        diags.warning_at(
            path.clone(),
            "Duplicate Ingress Blocks Merged",
            format!(
                "Several ingress blocks name the block {net}; their ports are merged into one \
                rule. Write one block per CIDR to keep the configuration clear."
            ),
        );
    }
    let open = coiled_firewall::world_open_ports(rules);
    if !open.is_empty() && !acknowledged {
        let ports: Vec<String> = open.iter().map(u16::to_string).collect();
        diags.warning_at(
            path.clone(),
            "Ingress Open to the Whole Internet",
            format!(
                "TCP port(s) {} accept connections from any address (0.0.0.0/0 or ::/0). Anyone \
                    who finds the scheduler can try to connect. Restrict the source to your \
                    network, or set `acknowledge_world_open_ingress = true` to keep this on \
                    purpose and silence this warning.",
                ports.join(", ")
            ),
        );
    }
}

/// The state value of `ingress` for rules the server reports: the prior value when it means the
/// same (keeping the user's spelling and order), else the server's rules in canonical form.
pub fn state_value(server: &RuleSet, prior: &Value) -> Value {
    if let Parsed::Rules(prior_rules) = read(prior, &Reading::stored(), &mut Diagnostics::new())
        && prior_rules.same_as(server)
    {
        return if prior.is_null() { Value::Set(Vec::new()) } else { prior.clone() };
    }
    server.set_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, ports: &[i64]) -> Value {
        Value::object([
            ("cidr", Value::string(cidr)),
            ("ports", Value::Set(ports.iter().map(|p| Value::int(*p)).collect())),
        ])
    }

    fn validating(acknowledged: bool) -> Reading {
        Reading::validating(AttrPath::attr("ingress"), acknowledged)
    }

    #[test]
    fn valid_blocks_parse_with_warnings() {
        let v = Value::Set(vec![
            block("10.1.0.2/16", &[8786]),
            block("0.0.0.0/0", &[443]),
            block("10.1.0.0/16", &[8787]),
        ]);
        let mut d = Diagnostics::new();
        let Parsed::Rules(rules) = read(&v, &validating(false), &mut d) else {
            panic!("not parsed")
        };
        assert_eq!(rules.rules().len(), 2);
        let summaries: Vec<&str> = d.0.iter().map(|x| x.summary.as_str()).collect();
        assert!(summaries.contains(&"CIDR Block Has Host Bits Set"), "{summaries:?}");
        assert!(summaries.contains(&"Duplicate Ingress Blocks Merged"));
        assert!(summaries.contains(&"Ingress Open to the Whole Internet"));
        assert!(!d.has_errors());
        let mut d = Diagnostics::new();
        read(&v, &validating(true), &mut d);
        assert!(!d.0.iter().any(|x| x.summary.contains("Whole Internet")), "acknowledged");
    }

    #[test]
    fn errors_point_at_the_attribute() {
        let v = Value::Set(vec![block("10.1.0.0/16", &[8786]), block("10.1.0.300/16", &[0])]);
        let mut d = Diagnostics::new();
        assert!(matches!(read(&v, &validating(false), &mut d), Parsed::Invalid));
        let paths: Vec<String> =
            d.0.iter().filter_map(|x| x.path.as_ref().map(ToString::to_string)).collect();
        assert_eq!(paths, vec!["ingress", "ingress"]);
        assert!(
            d.0[0].detail.contains("cidr \"10.1.0.300/16\" and ports [0]"),
            "{}",
            d.0[0].detail
        );
    }

    #[test]
    fn unknowns_defer_judgement() {
        let v = Value::Set(vec![Value::object([
            ("cidr", Value::Unknown),
            ("ports", Value::Set(vec![Value::int(22)])),
        ])]);
        assert!(matches!(read(&v, &validating(false), &mut Diagnostics::new()), Parsed::Unknown));
        assert!(matches!(
            read(&Value::Unknown, &Reading::at(AttrPath::attr("ingress")), &mut Diagnostics::new()),
            Parsed::Unknown
        ));
    }

    #[test]
    fn state_keeps_the_users_spelling_when_equal() {
        let prior = Value::Set(vec![block("10.1.0.2/16", &[8787, 8786])]);
        let wire = |ports| RuleSet::from_wire(&[IngressRule { ports, cidr: "10.1.0.0/16".into() }]);
        let server = wire(vec![8786, 8787]);
        assert_eq!(state_value(&server, &prior), prior);
        let drifted = wire(vec![22]);
        assert_eq!(state_value(&drifted, &prior), Value::Set(vec![block("10.1.0.0/16", &[22])]));
    }

    #[test]
    fn wire_form_is_merged_and_sorted() {
        let rules = RuleSet::new(&[Rule {
            cidr: "10.1.0.0/16".parse().unwrap(),
            ports: [8787, 8786].into(),
        }]);
        assert_eq!(
            serde_json::to_value(rules.to_wire()).unwrap(),
            serde_json::json!([{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}])
        );
    }
}
