//! Addresses an agent may never reach: the IANA IPv4 and IPv6 Special-Purpose Address
//! Registries (RFC 6890 and its updates) as tables, plus multicast, the deprecated IPv6 ranges and
//! everything outside IPv6 global unicast (`2000::/3`). IPv6 forms that carry an IPv4 address
//! (mapped, translated, compatible, NAT64, 6to4, Teredo) are also judged by that address.
//!
//! Every registry row is refused, the few IANA marks globally reachable included (anycast
//! relays and AS112 sinks serve no HTTP API). Only two rows are judged by the IPv4 address they
//! carry instead, because real resolvers hand them out for public hosts: IPv4-mapped
//! (`::ffff:0:0/96`) and the well-known NAT64 prefix (`64:ff9b::/96`, DNS64).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// One registry row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub net: IpNet,
    pub name: &'static str,
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.net)
    }
}

/// Why an address is off limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// It lies in a special-purpose range.
    In(Range),
    /// It is an IPv6 form (`form`) carrying an IPv4 address that lies in a special-purpose range.
    Embeds {
        form: Range,
        v4: Ipv4Addr,
        range: Range,
    },
    /// IPv6 outside `2000::/3` that no row names: reserved by the IETF.
    NotGlobalUnicast,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::In(range) => write!(f, "{range}"),
            Reason::Embeds { form, v4, range } => write!(f, "{form} carrying {v4}, {range}"),
            Reason::NotGlobalUnicast => f.write_str("outside IPv6 global unicast 2000::/3"),
        }
    }
}

/// Where an IPv6 form carries an IPv4 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embed {
    /// The last 32 bits (mapped, translated, compatible, NAT64 /96).
    Low32,
    /// Bits 16..48 (RFC 3056).
    SixToFour,
    /// The server in bits 32..64 and the client, inverted, in bits 96..128 (RFC 4380).
    Teredo,
}

impl Embed {
    fn addresses(self, ip: Ipv6Addr) -> Vec<Ipv4Addr> {
        let o = ip.octets();
        match self {
            Embed::Low32 => vec![Ipv4Addr::new(o[12], o[13], o[14], o[15])],
            Embed::SixToFour => vec![Ipv4Addr::new(o[2], o[3], o[4], o[5])],
            Embed::Teredo => vec![
                Ipv4Addr::new(o[4], o[5], o[6], o[7]),
                Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]),
            ],
        }
    }
}

/// What to do with an address in an IPv6 row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Refuse,
    /// Refused; the IPv4 address it carries is named in the reason when it is special too.
    RefuseNaming(Embed),
    /// Reachable exactly when the IPv4 address it carries is.
    ByEmbedded(Embed),
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str) -> (Ipv4Net, &'static str) {
    (Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len), name)
}

const fn v6(
    seg: [u16; 8],
    len: u8,
    name: &'static str,
    rule: Rule,
) -> (Ipv6Net, &'static str, Rule) {
    let [a, b, c, d, e, f, g, h] = seg;
    (
        Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len),
        name,
        rule,
    )
}

/// The IANA IPv4 Special-Purpose Address Registry, row by row, and IPv4 multicast.
const V4: &[(Ipv4Net, &str)] = &[
    v4(0, 0, 0, 0, 8, "this network"),
    v4(0, 0, 0, 0, 32, "this host on this network"),
    v4(10, 0, 0, 0, 8, "private-use"),
    v4(100, 64, 0, 0, 10, "shared address space"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link local"),
    v4(172, 16, 0, 0, 12, "private-use"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments"),
    v4(192, 0, 0, 0, 29, "IPv4 service continuity prefix"),
    v4(192, 0, 0, 8, 32, "IPv4 dummy address"),
    v4(192, 0, 0, 9, 32, "port control protocol anycast"),
    v4(
        192,
        0,
        0,
        10,
        32,
        "traversal using relays around NAT anycast",
    ),
    v4(192, 0, 0, 170, 32, "NAT64/DNS64 discovery"),
    v4(192, 0, 0, 171, 32, "NAT64/DNS64 discovery"),
    v4(192, 0, 2, 0, 24, "documentation (TEST-NET-1)"),
    v4(192, 31, 196, 0, 24, "AS112-v4"),
    v4(192, 52, 193, 0, 24, "AMT"),
    v4(192, 88, 99, 0, 24, "deprecated 6to4 relay anycast"),
    v4(192, 88, 99, 2, 32, "6a44-relay anycast"),
    v4(192, 168, 0, 0, 16, "private-use"),
    v4(192, 175, 48, 0, 24, "direct delegation AS112 service"),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, "documentation (TEST-NET-2)"),
    v4(203, 0, 113, 0, 24, "documentation (TEST-NET-3)"),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(240, 0, 0, 0, 4, "reserved"),
    v4(255, 255, 255, 255, 32, "limited broadcast"),
];

/// The IANA IPv6 Special-Purpose Address Registry, row by row, and the ranges other IANA
/// registries set apart (multicast, deprecated site-local, IPv4-compatible and -translated).
const V6: &[(Ipv6Net, &str, Rule)] = {
    use Embed::*;
    use Rule::*;
    &[
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback", Refuse),
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified", Refuse),
        v6(
            [0, 0, 0, 0, 0, 0xffff, 0, 0],
            96,
            "IPv4-mapped",
            ByEmbedded(Low32),
        ),
        v6(
            [0, 0, 0, 0, 0xffff, 0, 0, 0],
            96,
            "IPv4-translated",
            RefuseNaming(Low32),
        ),
        v6(
            [0, 0, 0, 0, 0, 0, 0, 0],
            96,
            "IPv4-compatible (deprecated)",
            RefuseNaming(Low32),
        ),
        v6(
            [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
            96,
            "IPv4-IPv6 translation",
            ByEmbedded(Low32),
        ),
        v6(
            [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
            48,
            "local-use IPv4-IPv6 translation",
            Refuse,
        ),
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only", Refuse),
        v6(
            [0x100, 0, 0, 1, 0, 0, 0, 0],
            64,
            "dummy IPv6 prefix",
            Refuse,
        ),
        v6(
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            23,
            "IETF protocol assignments",
            Refuse,
        ),
        v6(
            [0x2001, 0, 0, 0, 0, 0, 0, 0],
            32,
            "Teredo",
            RefuseNaming(Teredo),
        ),
        v6(
            [0x2001, 1, 0, 0, 0, 0, 0, 1],
            128,
            "port control protocol anycast",
            Refuse,
        ),
        v6(
            [0x2001, 1, 0, 0, 0, 0, 0, 2],
            128,
            "traversal using relays around NAT anycast",
            Refuse,
        ),
        v6(
            [0x2001, 1, 0, 0, 0, 0, 0, 3],
            128,
            "DNS-SD service registration protocol anycast",
            Refuse,
        ),
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "benchmarking", Refuse),
        v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, "AMT", Refuse),
        v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, "AS112-v6", Refuse),
        v6(
            [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
            28,
            "deprecated ORCHID",
            Refuse,
        ),
        v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28, "ORCHIDv2", Refuse),
        v6(
            [0x2001, 0x30, 0, 0, 0, 0, 0, 0],
            28,
            "drone remote ID entity tags",
            Refuse,
        ),
        v6(
            [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
            32,
            "documentation",
            Refuse,
        ),
        v6(
            [0x2002, 0, 0, 0, 0, 0, 0, 0],
            16,
            "6to4",
            RefuseNaming(SixToFour),
        ),
        v6(
            [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
            48,
            "direct delegation AS112 service",
            Refuse,
        ),
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation", Refuse),
        v6(
            [0x5f00, 0, 0, 0, 0, 0, 0, 0],
            16,
            "segment routing SIDs",
            Refuse,
        ),
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local", Refuse),
        v6(
            [0xfe80, 0, 0, 0, 0, 0, 0, 0],
            10,
            "link-local unicast",
            Refuse,
        ),
        v6(
            [0xfec0, 0, 0, 0, 0, 0, 0, 0],
            10,
            "site-local (deprecated)",
            Refuse,
        ),
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast", Refuse),
    ]
};

const GLOBAL_UNICAST: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Why `ip` is off limits, or `None` for a public unicast address.
pub fn special_purpose(ip: IpAddr) -> Option<Reason> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4).map(Reason::In),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// The most specific IPv4 row holding `ip`.
fn v4_range(ip: Ipv4Addr) -> Option<Range> {
    V4.iter()
        .filter(|(net, _)| net.contains(&ip))
        .max_by_key(|(net, _)| net.prefix_len())
        .map(|(net, name)| Range {
            net: IpNet::V4(*net),
            name,
        })
}

fn v6_reason(ip: Ipv6Addr) -> Option<Reason> {
    let row = V6
        .iter()
        .filter(|(net, _, _)| net.contains(&ip))
        .max_by_key(|(net, _, _)| net.prefix_len());
    let Some((net, name, rule)) = row else {
        return (!GLOBAL_UNICAST.contains(&ip)).then_some(Reason::NotGlobalUnicast);
    };
    let form = Range {
        net: IpNet::V6(*net),
        name,
    };
    let embed = match rule {
        Rule::Refuse => return Some(Reason::In(form)),
        Rule::RefuseNaming(embed) | Rule::ByEmbedded(embed) => *embed,
    };
    let embedded = embed
        .addresses(ip)
        .into_iter()
        .find_map(|v4| v4_range(v4).map(|range| (v4, range)));
    match (embedded, rule) {
        (Some((v4, range)), _) => Some(Reason::Embeds { form, v4, range }),
        (None, Rule::ByEmbedded(_)) => None,
        (None, _) => Some(Reason::In(form)),
    }
}

#[cfg(test)]
#[path = "special_tests.rs"]
mod tests;
