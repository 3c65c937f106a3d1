use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;

fn alert(name: &str, status: AlertStatus, labels: usize, text: usize) -> Alert {
    let mut label_map = BTreeMap::from([("alertname".to_owned(), name.to_owned())]);
    for i in 0..labels {
        label_map.insert(
            format!("label_{i:02}_{}", "k".repeat(300)),
            "v".repeat(2000),
        );
    }
    Alert {
        status,
        labels: label_map,
        annotations: BTreeMap::from([
            ("summary".to_owned(), "s".repeat(text)),
            ("description".to_owned(), "d".repeat(text)),
        ]),
        starts_at: chrono::Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap(),
        ends_at: Some(chrono::Utc.with_ymd_and_hms(2026, 12, 3, 10, 5, 0).unwrap()),
        generator_url: "http://prometheus:9090/graph?g0.expr=up".to_owned(),
        fingerprint: format!("fp-{name}"),
    }
}

fn group(alerts: Vec<Alert>) -> AlertGroup {
    AlertGroup {
        version: "4".into(),
        group_key: "{}:{alertname=\"X\"}".into(),
        status: AlertStatus::Firing,
        receiver: "discord".into(),
        group_labels: BTreeMap::from([("alertname".into(), "X".into())]),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        external_url: String::new(),
        alerts,
        truncated_alerts: 0,
    }
}

fn assert_within_limits(message: &Message) {
    assert!(message.content.chars().count() <= CONTENT_MAX);
    assert!(message.embeds.len() <= EMBEDS_MAX);
    assert!(message.size() <= MESSAGE_TOTAL_MAX, "{}", message.size());
    for e in &message.embeds {
        assert!(e.title.chars().count() <= TITLE_MAX);
        assert!(e.description.chars().count() <= DESCRIPTION_MAX);
        assert!(e.fields.len() <= FIELDS_MAX);
        for f in &e.fields {
            assert!(!f.name.is_empty() && f.name.chars().count() <= FIELD_NAME_MAX);
            assert!(!f.value.is_empty() && f.value.chars().count() <= FIELD_VALUE_MAX);
        }
    }
}

#[test]
fn oversized_alerts_are_cut_to_every_discord_limit() {
    let alerts: Vec<Alert> = (0..12)
        .map(|i| {
            alert(
                &format!("A{i}{}", "n".repeat(400)),
                AlertStatus::Firing,
                40,
                9000,
            )
        })
        .collect();
    let g = group(alerts);
    let refs: Vec<&Alert> = g.alerts.iter().collect();
    let rendered = render(&g, &refs);
    let carried: Vec<usize> = rendered.iter().flat_map(|r| r.alerts.clone()).collect();
    assert_eq!(
        carried,
        (0..12).collect::<Vec<_>>(),
        "every alert once, in order"
    );
    for r in &rendered {
        assert_within_limits(&r.message);
        assert_eq!(r.message.embeds.len(), r.alerts.len());
    }
    assert!(rendered[0].message.embeds[0].title.ends_with('…'));
}

#[test]
fn twenty_five_small_alerts_take_three_messages_of_at_most_ten() {
    let alerts: Vec<Alert> = (0..25)
        .map(|i| alert(&format!("A{i}"), AlertStatus::Firing, 0, 20))
        .collect();
    let g = group(alerts);
    let refs: Vec<&Alert> = g.alerts.iter().collect();
    let rendered = render(&g, &refs);
    let sizes: Vec<usize> = rendered.iter().map(|r| r.message.embeds.len()).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    assert!(rendered[2].message.content.ends_with("(part 3/3)"));
    for r in &rendered {
        assert_within_limits(&r.message);
    }
}

#[test]
fn a_resolved_alert_is_green_and_names_its_end() {
    let a = alert("Down", AlertStatus::Resolved, 1, 10);
    let e = embed(&a);
    assert_eq!(e.color, RESOLVED_COLOR);
    assert!(e.title.starts_with("[RESOLVED] Down"));
    let names: Vec<&str> = e.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"Ended"));
    assert_eq!(
        e.url.as_deref(),
        Some("http://prometheus:9090/graph?g0.expr=up")
    );
    let firing = embed(&alert("Down", AlertStatus::Firing, 1, 10));
    assert_eq!(firing.color, FIRING_COLOR);
    assert!(!firing.fields.iter().any(|f| f.name == "Ended"));
}

#[test]
fn cut_counts_characters_not_bytes() {
    assert_eq!(cut("ééé", 3), "ééé");
    assert_eq!(cut("éééé", 3), "éé…");
    assert_eq!(cut("", 3), "");
}

/// What a Discord recipient gets for one firing alert of Curtain's own rules (printed with
/// `--nocapture`; the note of issue 7 quotes it).
#[test]
fn a_firing_backlog_alert_renders_as_one_red_embed_with_its_summary_and_labels() {
    let alert = Alert {
        status: AlertStatus::Firing,
        labels: BTreeMap::from([
            (
                "alertname".to_owned(),
                "CurtainClickQueueBacklog".to_owned(),
            ),
            ("queue".to_owned(), "curtain:clicks".to_owned()),
            ("severity".to_owned(), "page".to_owned()),
        ]),
        annotations: BTreeMap::from([
            (
                "summary".to_owned(),
                "Click queue curtain:clicks: oldest job waited 412 s".to_owned(),
            ),
            (
                "description".to_owned(),
                "Clicks are not being ingested fast enough; check the workers.".to_owned(),
            ),
        ]),
        starts_at: chrono::Utc.with_ymd_and_hms(2026, 12, 4, 2, 40, 0).unwrap(),
        ends_at: None,
        generator_url:
            "http://prometheus:9090/graph?g0.expr=curtain_queue_oldest_ready_age_seconds".to_owned(),
        fingerprint: "fp-backlog".to_owned(),
    };
    let mut g = group(vec![alert]);
    g.group_labels = BTreeMap::from([("alertname".into(), "CurtainClickQueueBacklog".into())]);
    let rendered = render(&g, &g.alerts.iter().collect::<Vec<_>>());
    assert_eq!(rendered.len(), 1);
    let message = &rendered[0].message;
    println!("{}", serde_json::to_string_pretty(message).unwrap());
    assert_eq!(message.embeds.len(), 1);
    let embed = &message.embeds[0];
    assert_eq!(embed.color, FIRING_COLOR);
    let text = serde_json::to_string(message).unwrap();
    for expected in [
        "CurtainClickQueueBacklog",
        "oldest job waited 412 s",
        "curtain:clicks",
        "severity",
        "2026-12-04",
        "http://prometheus:9090/graph",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
}
