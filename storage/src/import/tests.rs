use super::*;

#[test]
fn users_csv_with_bom_and_both_timestamp_forms() {
    let data = "\u{feff}id,username,email,created_at\n1,a,a@x.io,2025-01-02 03:04:05\n,b,b@x.io,2025-01-02T03:04:05\n";
    let rows = parse_users(data.as_bytes()).unwrap();
    assert_eq!(rows.len(), 2);
}

#[test]
fn bad_rows_name_their_line() {
    let e = parse_users(b"id,username,email\n1,a,a@x.io\nx,b,b@x.io\n").unwrap_err();
    assert_eq!(e.to_string(), "CSV row 3: invalid id 'x'");
    let e = parse_users(b"username,email,created_at\na,a@x.io,yesterday\n").unwrap_err();
    assert_eq!(e.to_string(), "CSV row 2: invalid created_at 'yesterday'");
    let e = parse_users(b"username,email\na,a@x.io\n\xff,b@x.io\n").unwrap_err();
    assert_eq!(e.to_string(), "CSV row 3: not valid UTF-8");
    let e = parse_users(b"username,email\na,\n").unwrap_err();
    assert_eq!(e.to_string(), USERS_REQUIRED);
}

#[test]
fn seed_style_urls_and_events_parse() {
    let urls = "id,user_id,short_code,original_url,title,is_active,created_at,updated_at\n\
                1,1,d5DnL5,https://a.io/1,Title,True,2025-10-14 15:07:51,2026-01-22 14:39:15\n\
                2,,KZ6mAC,https://a.io/2,,False,2025-05-17 10:37:38,2025-12-12 13:13:18\n";
    assert_eq!(parse_urls(urls.as_bytes()).unwrap().len(), 2);
    let events = "id,url_id,user_id,event_type,timestamp,details\n\
                  1,1,1,created,2025-10-14 15:07:51,\"{\"\"short_code\"\":\"\"d5DnL5\"\"}\"\n\
                  2,1,,deleted,2025-10-14 15:07:51,\n";
    assert_eq!(parse_events(events.as_bytes()).unwrap().len(), 2);
    let bad =
        "id,url_id,user_id,event_type,timestamp,details\n1,1,1,created,2025-10-14 15:07:51,[1]\n";
    let xss = "id,short_code,original_url\n1,aaaaaa,https://a.io/1\n2,bbbbbb,javascript:alert(1)\n";
    assert_eq!(
        parse_urls(xss.as_bytes()).unwrap_err().to_string(),
        "CSV row 3: original_url 'javascript:alert(1)' must be an http(s) URL with a valid host"
    );
    let port = "id,short_code,original_url\n1,aaaaaa,https://a.io:99999/\n";
    assert_eq!(parse_urls(port.as_bytes()).unwrap_err().line, Some(2));
    assert_eq!(
        parse_events(bad.as_bytes()).unwrap_err().to_string(),
        "CSV row 2: details must be a JSON object"
    );
}
