use super::*;

fn target(host: &str, port: u16, path: &str) -> Target {
    Target {
        host: host.to_string(),
        port,
        path: path.to_string(),
    }
}

#[test]
fn absolute_uris_become_origin_form() {
    let p = parse_absolute;
    assert_eq!(
        p("http://a.example.com/x?y"),
        Ok(target("a.example.com", 80, "/x?y"))
    );
    assert_eq!(
        p("HTTP://a.example.com"),
        Ok(target("a.example.com", 80, "/"))
    );
    assert_eq!(
        p("http://a.example.com:443?q"),
        Ok(target("a.example.com", 443, "/?q"))
    );
    assert_eq!(p("http://[::1]:80/").map(|t| t.host), Ok("[::1]".into()));
    for bad in [
        "https://a.example.com/",
        "/relative",
        "*",
        "a.example.com:80",
        "http://user@a.example.com/",
        "http://allowed.example@127.0.0.1/",
        "http://allowed.example:x@127.0.0.1/",
        "http://allowed.example\\@127.0.0.1/",
        "http://a.example.com:99999/",
        "http://a.example.com:-1/",
        "http://a.example.com:+80/",
        "http://a.example.com:/",
        "http:///path",
    ] {
        assert!(p(bad).is_err(), "{bad}: {:?}", p(bad));
    }
    let creds = p("http://allowed.example@127.0.0.1/").unwrap_err();
    assert!(creds.starts_with("credentials in"), "{creds}");
}

#[test]
fn connect_targets_need_a_port_and_no_credentials() {
    assert_eq!(
        parse_authority("a.example.com:443"),
        Ok(target("a.example.com", 443, ""))
    );
    assert_eq!(
        parse_authority("[::1]:443").map(|t| t.host),
        Ok("[::1]".into())
    );
    for bad in [
        "a.example.com",
        "allowed.example@127.0.0.1:443",
        ":443",
        "a.example.com:65536",
        "http://a.example.com:443",
    ] {
        assert!(parse_authority(bad).is_err(), "{bad}");
    }
}

fn head(raw: &str) -> Result<Option<(Head, Vec<u8>)>, HeadError> {
    parse_head(raw.as_bytes())
}

#[test]
fn heads_are_parsed_by_httparse() {
    let (h, rest) = head("GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n\r\nbody")
        .ok()
        .flatten()
        .unwrap();
    assert_eq!(
        (h.method.as_str(), h.target.as_str()),
        ("GET", "http://a.test/")
    );
    assert_eq!(
        h.headers,
        [
            ("Host".to_string(), b"a.test".to_vec()),
            ("X-A".to_string(), b"1".to_vec())
        ]
    );
    assert_eq!(rest, b"body");
    assert!(matches!(
        head("GET http://a.test/ HTTP/1.1\r\nHost: a"),
        Ok(None)
    ));
    for bad in [
        "GET http://a.test/ HTTP/2.0\r\n\r\n",
        "GET  http://a.test/ HTTP/1.1\r\n\r\n",
        "G(T http://a.test/ HTTP/1.1\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nno colon\r\n\r\n",
        "GET http://a.test/ HTTP/1.1\r\nX: a\rb\r\n\r\n",
    ] {
        assert!(matches!(head(bad), Err(HeadError::Malformed(_))), "{bad:?}");
    }
    let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET http://a.test/ HTTP/1.1\r\n{many}\r\n");
    assert!(matches!(head(&many), Err(HeadError::TooLarge)));
    let long = format!(
        "GET http://a.test/ HTTP/1.1\r\nX: {}\r\n\r\n",
        "a".repeat(HEAD_LIMIT)
    );
    assert!(matches!(head(&long), Err(HeadError::TooLarge)));
}

#[test]
fn the_host_header_must_name_the_target() {
    let to = target("allowed.example", 443, "");
    let check = |values: &[&str]| {
        let headers: Vec<(String, Vec<u8>)> = values
            .iter()
            .map(|v| ("host".to_string(), v.as_bytes().to_vec()))
            .collect();
        check_host_header(&headers, &to)
    };
    for ok in [
        &[][..],
        &["allowed.example:443"],
        &["Allowed.Example"],
        &["allowed.example.:443"],
    ] {
        assert_eq!(check(ok), Ok(()), "{ok:?}");
    }
    for bad in [
        &["127.0.0.1:443"][..],
        &["allowed.example:80"],
        &["other.example"],
        &["allowed.example@127.0.0.1"],
        &["allowed.example", "allowed.example"],
        &["allowed.example/x"],
    ] {
        assert!(check(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn agent_text_is_bounded_in_logs() {
    assert_eq!(shown("short"), "short");
    let long = "é".repeat(300);
    let cut = shown(&long);
    assert!(cut.len() <= 204 && cut.ends_with('…'), "{}", cut.len());
}
