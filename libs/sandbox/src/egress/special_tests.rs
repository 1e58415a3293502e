//! Hand-written samples from the registries' RFCs: an independent oracle for the tables.

use std::collections::HashSet;

use super::*;

fn reason(ip: &str) -> Option<Reason> {
    special_purpose(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}")))
}

/// The row an address falls in, as `name net`.
fn row(ip: &str) -> String {
    match reason(ip) {
        Some(Reason::In(range)) => range.to_string(),
        other => panic!("{ip}: expected a plain range, got {other:?}"),
    }
}

const V4_SAMPLES: &[(&str, &str)] = &[
    ("0.1.2.3", "this network 0.0.0.0/8"),
    ("0.0.0.0", "this host on this network 0.0.0.0/32"),
    ("10.20.30.40", "private-use 10.0.0.0/8"),
    ("100.64.0.0", "shared address space 100.64.0.0/10"),
    ("100.127.255.255", "shared address space 100.64.0.0/10"),
    ("127.0.0.1", "loopback 127.0.0.0/8"),
    ("127.255.255.254", "loopback 127.0.0.0/8"),
    ("169.254.169.254", "link local 169.254.0.0/16"),
    ("172.16.0.1", "private-use 172.16.0.0/12"),
    ("172.31.255.255", "private-use 172.16.0.0/12"),
    ("192.0.0.100", "IETF protocol assignments 192.0.0.0/24"),
    ("192.0.0.5", "IPv4 service continuity prefix 192.0.0.0/29"),
    ("192.0.0.8", "IPv4 dummy address 192.0.0.8/32"),
    ("192.0.0.9", "port control protocol anycast 192.0.0.9/32"),
    (
        "192.0.0.10",
        "traversal using relays around NAT anycast 192.0.0.10/32",
    ),
    ("192.0.0.170", "NAT64/DNS64 discovery 192.0.0.170/32"),
    ("192.0.0.171", "NAT64/DNS64 discovery 192.0.0.171/32"),
    ("192.0.2.1", "documentation (TEST-NET-1) 192.0.2.0/24"),
    ("192.31.196.1", "AS112-v4 192.31.196.0/24"),
    ("192.52.193.1", "AMT 192.52.193.0/24"),
    (
        "192.88.99.1",
        "deprecated 6to4 relay anycast 192.88.99.0/24",
    ),
    ("192.88.99.2", "6a44-relay anycast 192.88.99.2/32"),
    ("192.168.1.1", "private-use 192.168.0.0/16"),
    (
        "192.175.48.1",
        "direct delegation AS112 service 192.175.48.0/24",
    ),
    ("198.18.0.1", "benchmarking 198.18.0.0/15"),
    ("198.19.255.255", "benchmarking 198.18.0.0/15"),
    ("198.51.100.7", "documentation (TEST-NET-2) 198.51.100.0/24"),
    ("203.0.113.9", "documentation (TEST-NET-3) 203.0.113.0/24"),
    ("224.0.0.1", "multicast 224.0.0.0/4"),
    ("239.255.255.250", "multicast 224.0.0.0/4"),
    ("240.0.0.1", "reserved 240.0.0.0/4"),
    ("255.255.255.254", "reserved 240.0.0.0/4"),
    ("255.255.255.255", "limited broadcast 255.255.255.255/32"),
];

/// Just outside the ranges above, and ordinary public hosts.
const V4_PUBLIC: &[&str] = &[
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.0.3.0",
    "192.88.98.255",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "203.0.112.255",
    "223.255.255.255",
];

const V6_SAMPLES: &[(&str, &str)] = &[
    ("::1", "loopback ::1/128"),
    ("::", "unspecified ::/128"),
    ("::ffff:0:808:808", "IPv4-translated ::ffff:0:0:0/96"),
    ("::808:808", "IPv4-compatible (deprecated) ::/96"),
    (
        "64:ff9b:1::1",
        "local-use IPv4-IPv6 translation 64:ff9b:1::/48",
    ),
    ("100::1", "discard-only 100::/64"),
    ("100:0:0:1::1", "dummy IPv6 prefix 100:0:0:1::/64"),
    ("2001:100::1", "IETF protocol assignments 2001::/23"),
    // Teredo, public server 65.54.227.120 and public client 8.8.8.8.
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "Teredo 2001::/32"),
    ("2001:1::1", "port control protocol anycast 2001:1::1/128"),
    (
        "2001:1::2",
        "traversal using relays around NAT anycast 2001:1::2/128",
    ),
    (
        "2001:1::3",
        "DNS-SD service registration protocol anycast 2001:1::3/128",
    ),
    ("2001:2::1", "benchmarking 2001:2::/48"),
    ("2001:3::1", "AMT 2001:3::/32"),
    ("2001:4:112::1", "AS112-v6 2001:4:112::/48"),
    ("2001:10::1", "deprecated ORCHID 2001:10::/28"),
    ("2001:20::1", "ORCHIDv2 2001:20::/28"),
    ("2001:30::1", "drone remote ID entity tags 2001:30::/28"),
    ("2001:db8::1", "documentation 2001:db8::/32"),
    ("2002:808:808::1", "6to4 2002::/16"),
    (
        "2620:4f:8000::1",
        "direct delegation AS112 service 2620:4f:8000::/48",
    ),
    ("3fff::1", "documentation 3fff::/20"),
    ("5f00::1", "segment routing SIDs 5f00::/16"),
    ("fc00::1", "unique-local fc00::/7"),
    ("fd12:3456::1", "unique-local fc00::/7"),
    ("fe80::1", "link-local unicast fe80::/10"),
    ("fec0::1", "site-local (deprecated) fec0::/10"),
    ("ff02::1", "multicast ff00::/8"),
];

/// Each form that carries an IPv4 address, carrying an internal one: (address, form, carried,
/// the carried address's row).
const EMBEDDED: &[(&str, &str, &str, &str)] = &[
    (
        "::ffff:127.0.0.1",
        "IPv4-mapped ::ffff:0.0.0.0/96",
        "127.0.0.1",
        "loopback 127.0.0.0/8",
    ),
    (
        "::ffff:169.254.169.254",
        "IPv4-mapped ::ffff:0.0.0.0/96",
        "169.254.169.254",
        "link local 169.254.0.0/16",
    ),
    (
        "::ffff:0:127.0.0.1",
        "IPv4-translated ::ffff:0:0:0/96",
        "127.0.0.1",
        "loopback 127.0.0.0/8",
    ),
    (
        "::127.0.0.1",
        "IPv4-compatible (deprecated) ::/96",
        "127.0.0.1",
        "loopback 127.0.0.0/8",
    ),
    (
        "64:ff9b::10.0.0.1",
        "IPv4-IPv6 translation 64:ff9b::/96",
        "10.0.0.1",
        "private-use 10.0.0.0/8",
    ),
    (
        "64:ff9b::a9fe:a9fe",
        "IPv4-IPv6 translation 64:ff9b::/96",
        "169.254.169.254",
        "link local 169.254.0.0/16",
    ),
    (
        "2002:7f00:1::",
        "6to4 2002::/16",
        "127.0.0.1",
        "loopback 127.0.0.0/8",
    ),
    (
        "2002:c0a8:101::1",
        "6to4 2002::/16",
        "192.168.1.1",
        "private-use 192.168.0.0/16",
    ),
    // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (stored inverted).
    (
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "Teredo 2001::/32",
        "192.0.2.45",
        "documentation (TEST-NET-1) 192.0.2.0/24",
    ),
    // Client 127.0.0.1, inverted.
    (
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "Teredo 2001::/32",
        "127.0.0.1",
        "loopback 127.0.0.0/8",
    ),
    // Server 10.0.0.1.
    (
        "2001:0:a00:1:8000:63bf:f7f7:f7f7",
        "Teredo 2001::/32",
        "10.0.0.1",
        "private-use 10.0.0.0/8",
    ),
];

const V6_PUBLIC: &[&str] = &[
    "2606:2800:220:1::1",
    "2001:4860:4860::8888",
    "2001:200::1",
    "2001:db9::1",
    "2003::1",
    "2620:4f:8001::1",
    "3fff:1000::1",
    "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    // Judged by the public IPv4 address they carry.
    "::ffff:93.184.216.34",
    "64:ff9b::93.184.216.34",
];

#[test]
fn every_ipv4_row_is_refused_and_its_neighbours_are_not() {
    for (ip, want) in V4_SAMPLES {
        assert_eq!(row(ip), *want, "{ip}");
    }
    for ip in V4_PUBLIC {
        assert_eq!(reason(ip), None, "{ip}");
    }
}

#[test]
fn every_ipv6_row_is_refused_and_its_neighbours_are_not() {
    for (ip, want) in V6_SAMPLES {
        assert_eq!(row(ip), *want, "{ip}");
    }
    for ip in V6_PUBLIC {
        assert_eq!(reason(ip), None, "{ip}");
    }
}

#[test]
fn ipv6_outside_global_unicast_is_refused() {
    for ip in [
        "1::1",
        "4000::1",
        "5f01::1",
        "e000::1",
        "::2:0:0:1",
        "1fff:ffff::1",
    ] {
        assert_eq!(reason(ip), Some(Reason::NotGlobalUnicast), "{ip}");
    }
}

#[test]
fn each_embedded_form_is_judged_by_the_ipv4_address_it_carries() {
    for (ip, form, v4, range) in EMBEDDED {
        match reason(ip) {
            Some(Reason::Embeds {
                form: f,
                v4: carried,
                range: r,
            }) => {
                assert_eq!(f.to_string(), *form, "{ip}");
                assert_eq!(carried.to_string(), *v4, "{ip}");
                assert_eq!(r.to_string(), *range, "{ip}");
            }
            other => panic!("{ip}: {other:?}"),
        }
    }
    let teredo = reason("2001:0:4136:e378:8000:63bf:80ff:fffe").unwrap();
    assert_eq!(
        teredo.to_string(),
        "Teredo 2001::/32 carrying 127.0.0.1, loopback 127.0.0.0/8"
    );
}

/// The samples name every row of both tables, so no row goes untested.
#[test]
fn the_samples_cover_every_row() {
    let mut seen = HashSet::new();
    let samples = V4_SAMPLES.iter().chain(V6_SAMPLES).map(|(ip, _)| *ip);
    for ip in samples.chain(EMBEDDED.iter().map(|e| e.0)) {
        match reason(ip) {
            Some(Reason::In(r)) => {
                seen.insert(r.net);
            }
            Some(Reason::Embeds { form, range, .. }) => {
                seen.insert(form.net);
                seen.insert(range.net);
            }
            _ => {}
        }
    }
    for (net, name) in V4 {
        assert!(
            seen.contains(&IpNet::V4(*net)),
            "no sample for {name} {net}"
        );
    }
    for (net, name, _) in V6 {
        assert!(
            seen.contains(&IpNet::V6(*net)),
            "no sample for {name} {net}"
        );
    }
}
