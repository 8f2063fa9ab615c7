//! The firewall domain: ingress rules (TCP ports open to one CIDR block) as pure functions.
//!
//! CIDRs are compared in canonical form (network address, lower-case compressed IPv6), so `10.1.0.2/16`
//! and `10.1.0.0/16` are the same rule; port lists are sets; rules for the same block merge. The rows a
//! firewall ends up with are one per (port, source), protocol `tcp`, as Coiled's docs tabulate them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;

/// A parsed CIDR block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// The block with host bits cleared.
    pub net: IpNet,
    /// Whether the text had host bits set (`10.1.0.2/16`).
    pub had_host_bits: bool,
}

impl Cidr {
    /// The canonical text, e.g. `10.1.0.0/16` or `2001:db8::/32`.
    pub fn canonical(&self) -> String {
        self.net.to_string()
    }
    /// Whether it admits the whole internet (`0.0.0.0/0`, `::/0`).
    pub fn is_world(&self) -> bool {
        self.net.prefix_len() == 0
    }
}

/// Why a CIDR block was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// Empty text.
    #[error("a CIDR block is required, e.g. \"10.1.0.0/16\"")]
    Empty,
    /// No `/prefix`.
    #[error("{0:?} has no prefix length; write a block such as \"{0}/32\" for a single address")]
    NoPrefix(String),
    /// Not an address/prefix pair.
    #[error(
        "{0:?} is not a CIDR block; expected an IPv4 or IPv6 address and a prefix length, e.g. \
            \"10.1.0.0/16\" or \"2001:db8::/32\""
    )]
    Syntax(String),
    /// Prefix longer than the address.
    #[error(
        "{0:?} has a prefix length longer than its address (at most /32 for IPv4, /128 for IPv6)"
    )]
    Prefix(String),
}

/// Parses a CIDR block, accepting host bits (reported in [`Cidr::had_host_bits`]).
pub fn parse_cidr(text: &str) -> Result<Cidr, CidrError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(CidrError::Empty);
    }
    if t != text {
        return Err(CidrError::Syntax(text.to_string()));
    }
    let Some((addr, prefix)) = t.split_once('/') else {
        return if t.parse::<std::net::IpAddr>().is_ok() {
            Err(CidrError::NoPrefix(t.to_string()))
        } else {
            Err(CidrError::Syntax(t.to_string()))
        };
    };
    let ip: std::net::IpAddr = addr.parse().map_err(|_| CidrError::Syntax(t.to_string()))?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return Err(CidrError::Syntax(t.to_string()));
    }
    let len: u8 = prefix.parse().map_err(|_| CidrError::Syntax(t.to_string()))?;
    let net = IpNet::new(ip, len).map_err(|_| CidrError::Prefix(t.to_string()))?;
    let trunc = net.trunc();
    Ok(Cidr { had_host_bits: trunc.addr() != ip, net: trunc })
}

/// Why a port was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a TCP port; ports are whole numbers from 1 to 65535")]
pub struct PortError(pub String);

/// Checks a port number given as decimal text.
pub fn parse_port(text: &str) -> Result<u16, PortError> {
    match text.parse::<i64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(PortError(text.to_string())),
    }
}

/// One ingress rule in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    /// Source block.
    pub cidr: IpNet,
    /// TCP ports.
    pub ports: BTreeSet<u16>,
}

/// One row of a firewall, as Coiled's docs tabulate them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    /// Always `tcp`.
    pub protocol: &'static str,
    /// The port.
    pub port: u16,
    /// The source block, canonical.
    pub source: String,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} from {}", self.protocol, self.port, self.source)
    }
}

/// Rules merged by source block: the canonical form two rule lists are compared in.
/// Returns the merged rules and the blocks that appeared more than once.
pub fn merge(rules: &[Rule]) -> (Vec<Rule>, Vec<IpNet>) {
    let mut by_cidr: BTreeMap<IpNet, BTreeSet<u16>> = BTreeMap::new();
    let mut repeated = Vec::new();
    for r in rules {
        let entry = by_cidr.entry(r.cidr);
        if let std::collections::btree_map::Entry::Occupied(_) = &entry
            && !repeated.contains(&r.cidr)
        {
            repeated.push(r.cidr);
        }
        entry.or_default().extend(r.ports.iter().copied());
    }
    (by_cidr.into_iter().map(|(cidr, ports)| Rule { cidr, ports }).collect(), repeated)
}

/// Whether two rule lists open exactly the same ports to the same blocks.
pub fn same_rules(a: &[Rule], b: &[Rule]) -> bool {
    merge(a).0 == merge(b).0
}

/// Whether a source block lies wholly in private address space: RFC 1918, shared address space
/// (100.64.0.0/10), loopback, link-local, or IPv6 unique-local / link-local / loopback.
pub fn is_private(net: &IpNet) -> bool {
    let blocks = [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    ];
    blocks.iter().filter_map(|b| b.parse::<IpNet>().ok()).any(|b| b.contains(net))
}

/// The firewall rows the rules produce: one per (port, source), sorted by source then port descending
/// (the order of Coiled's docs table).
pub fn firewall_rows(rules: &[Rule]) -> Vec<Row> {
    let (merged, _) = merge(rules);
    let mut rows: Vec<Row> = merged
        .iter()
        .flat_map(|r| {
            r.ports.iter().map(move |p| Row {
                protocol: "tcp",
                port: *p,
                source: r.cidr.to_string(),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.source.cmp(&b.source).then(b.port.cmp(&a.port)));
    rows
}

/// The ports a rule list opens to the whole internet.
pub fn world_open_ports(rules: &[Rule]) -> BTreeSet<u16> {
    rules
        .iter()
        .filter(|r| r.cidr.prefix_len() == 0)
        .flat_map(|r| r.ports.iter().copied())
        .collect()
}

/// Builds a rule from wire values (`{"ports": [...], "cidr": "..."}`), canonicalising; `None` if invalid.
pub fn rule_from_wire(ports: &[i64], cidr: &str) -> Option<Rule> {
    let c = parse_cidr(cidr).ok()?;
    let ports = ports
        .iter()
        .map(|p| u16::try_from(*p).ok().filter(|p| *p > 0))
        .collect::<Option<BTreeSet<u16>>>()?;
    if ports.is_empty() {
        return None;
    }
    Some(Rule { cidr: c.net, ports })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_blocks_are_told_apart() {
        for private in ["10.1.0.0/16", "172.31.0.0/16", "192.168.1.0/24", "fd00::/8"] {
            assert!(is_private(&private.parse().unwrap()), "{private}");
        }
        for public in ["0.0.0.0/0", "8.8.8.0/24", "172.0.0.0/8", "2001:db8::/32"] {
            assert!(!is_private(&public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn cidr_table() {
        let ok: &[(&str, &str, bool)] = &[
            ("10.1.0.0/16", "10.1.0.0/16", false),
            ("10.1.0.2/16", "10.1.0.0/16", true),
            ("0.0.0.0/0", "0.0.0.0/0", false),
            ("192.0.2.7/32", "192.0.2.7/32", false),
            ("2001:DB8::1/32", "2001:db8::/32", true),
            ("2001:0db8:0000::/48", "2001:db8::/48", false),
            ("::/0", "::/0", false),
        ];
        for (input, canonical, host_bits) in ok {
            let c = parse_cidr(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(c.canonical(), *canonical, "{input}");
            assert_eq!(c.had_host_bits, *host_bits, "{input}");
        }
        let bad: &[(&str, fn(&CidrError) -> bool)] = &[
            ("", |e| matches!(e, CidrError::Empty)),
            ("10.1.0.0", |e| matches!(e, CidrError::NoPrefix(_))),
            ("10.1.0.0/33", |e| matches!(e, CidrError::Prefix(_))),
            ("2001:db8::/129", |e| matches!(e, CidrError::Prefix(_))),
            ("10.1.0.300/16", |e| matches!(e, CidrError::Syntax(_))),
            ("10.1.0.0/-1", |e| matches!(e, CidrError::Syntax(_))),
            ("10.1.0.0/", |e| matches!(e, CidrError::Syntax(_))),
            ("10.1.0.0/16 ", |e| matches!(e, CidrError::Syntax(_))),
            ("example.com/16", |e| matches!(e, CidrError::Syntax(_))),
            ("10.1/16", |e| matches!(e, CidrError::Syntax(_))),
        ];
        for (input, check) in bad {
            let e = parse_cidr(input).expect_err(input);
            assert!(check(&e), "{input}: {e:?}");
        }
    }

    #[test]
    fn ports_table() {
        assert_eq!(parse_port("8786"), Ok(8786));
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["0", "65536", "-1", "1.5", "x"] {
            assert!(parse_port(bad).is_err(), "{bad}");
        }
    }

    fn rule(cidr: &str, ports: &[u16]) -> Rule {
        Rule { cidr: parse_cidr(cidr).unwrap().net, ports: ports.iter().copied().collect() }
    }

    #[test]
    fn the_seed_documents_table() {
        let rows = firewall_rows(&[rule("10.1.0.0/16", &[8786, 8787])]);
        let text: Vec<String> = rows.iter().map(ToString::to_string).collect();
        assert_eq!(text, vec!["tcp 8787 from 10.1.0.0/16", "tcp 8786 from 10.1.0.0/16"]);
    }

    #[test]
    fn merging_is_order_free_and_reports_repeats() {
        let a = vec![
            rule("10.1.0.2/16", &[8787]),
            rule("10.32.0.0/16", &[8787]),
            rule("10.1.0.0/16", &[8786]),
        ];
        let b = vec![rule("10.32.0.0/16", &[8787]), rule("10.1.0.0/16", &[8786, 8787])];
        assert!(same_rules(&a, &b));
        let (merged, repeated) = merge(&a);
        assert_eq!(merged.len(), 2);
        assert_eq!(repeated, vec!["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        assert!(!same_rules(&a, &[rule("10.1.0.0/16", &[8786])]));
    }

    #[test]
    fn world_open_ports_are_found() {
        let rules =
            vec![rule("0.0.0.0/0", &[443, 8786]), rule("::/0", &[22]), rule("10.0.0.0/8", &[8787])];
        assert_eq!(world_open_ports(&rules).into_iter().collect::<Vec<_>>(), vec![22, 443, 8786]);
    }

    #[test]
    fn wire_rules_are_checked() {
        assert_eq!(rule_from_wire(&[8786], "10.1.0.2/16"), Some(rule("10.1.0.0/16", &[8786])));
        assert_eq!(rule_from_wire(&[], "10.1.0.0/16"), None);
        assert_eq!(rule_from_wire(&[70000], "10.1.0.0/16"), None);
        assert_eq!(rule_from_wire(&[1], "nope"), None);
    }
}
