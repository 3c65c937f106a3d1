//! Discord messages for an alert group: one embed per alert (red firing, green resolved), cut
//! to Discord's documented limits and split over as many messages as needed.
//!
//! Limits (Discord's webhook documentation): `content` <= 2000 characters, <= 10 embeds per
//! message, embed title <= 256, description <= 4096, <= 25 fields (name <= 256, value
//! <= 1024), and 6000 characters per message over content and every embed's title,
//! description and fields. Characters are counted as Unicode scalar values; a cut text ends in
//! `…`. Mentions are disabled (`allowed_mentions`), so alert text cannot ping anyone.

use jobs::{Alert, AlertGroup, AlertStatus};
use serde::Serialize;

pub const CONTENT_MAX: usize = 2000;
pub const EMBEDS_MAX: usize = 10;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4096;
pub const FIELDS_MAX: usize = 25;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1024;
pub const MESSAGE_TOTAL_MAX: usize = 6000;

/// The group header in `content`, before the part number.
const HEADER_MAX: usize = 480;
/// What content may take of a message's total (header plus " (part 10/10)").
const CONTENT_RESERVED: usize = 500;
/// The most one embed may take, so it always fits beside the content.
const EMBED_BUDGET: usize = MESSAGE_TOTAL_MAX - CONTENT_RESERVED;
/// Description kept at least this long when fields must make room.
const DESCRIPTION_MIN: usize = 200;

pub const FIRING_COLOR: u32 = 0x00E0_1E5A;
pub const RESOLVED_COLOR: u32 = 0x002E_B67D;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub content: String,
    pub username: String,
    pub embeds: Vec<Embed>,
    pub allowed_mentions: AllowedMentions,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AllowedMentions {
    pub parse: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Embed {
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub color: u32,
    pub fields: Vec<Field>,
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
    pub inline: bool,
}

impl Embed {
    /// Characters this embed counts towards a message's 6000.
    #[must_use]
    pub fn size(&self) -> usize {
        chars(&self.title)
            + chars(&self.description)
            + self
                .fields
                .iter()
                .map(|f| chars(&f.name) + chars(&f.value))
                .sum::<usize>()
    }
}

impl Message {
    /// Characters this message counts towards Discord's 6000.
    #[must_use]
    pub fn size(&self) -> usize {
        chars(&self.content) + self.embeds.iter().map(Embed::size).sum::<usize>()
    }
}

/// One message to send and the alerts it carries (indices into the slice given to [`render`]).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub message: Message,
    pub alerts: Vec<usize>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `max` characters (ending in `…` when cut); never empty if `s` is not.
#[must_use]
pub fn cut(s: &str, max: usize) -> String {
    if chars(s) <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn field(name: &str, value: &str, inline: bool) -> Field {
    let or_dash = |s: &str| {
        if s.trim().is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    Field {
        name: cut(&or_dash(name), FIELD_NAME_MAX),
        value: cut(&or_dash(value), FIELD_VALUE_MAX),
        inline,
    }
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The embed of one alert, within every per-embed limit and [`EMBED_BUDGET`].
#[must_use]
pub fn embed(alert: &Alert) -> Embed {
    let (status, color) = match alert.status {
        AlertStatus::Firing => ("FIRING", FIRING_COLOR),
        AlertStatus::Resolved => ("RESOLVED", RESOLVED_COLOR),
    };
    let title = cut(&format!("[{status}] {}", alert.name()), TITLE_MAX);
    let summary = alert.annotations.get("summary").map_or("", String::as_str);
    let details = alert
        .annotations
        .get("description")
        .map_or("", String::as_str);
    let description = match (summary.is_empty(), details.is_empty()) {
        (false, false) => format!("**{summary}**\n{details}"),
        (false, true) => format!("**{summary}**"),
        (true, _) => details.to_owned(),
    };
    let mut times = vec![field("Started", &time(alert.starts_at), true)];
    if alert.status == AlertStatus::Resolved
        && let Some(ended) = alert.ends_at.filter(|t| t.timestamp() > 0)
    {
        times.push(field("Ended", &time(ended), true));
    }
    let labels: Vec<(&String, &String)> = alert
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .collect();
    let room = FIELDS_MAX - times.len();
    let mut label_fields: Vec<Field> = if labels.len() > room {
        let mut kept: Vec<Field> = labels[..room - 1]
            .iter()
            .map(|(k, v)| field(k, v, true))
            .collect();
        let rest = labels.len() - (room - 1);
        kept.push(field("…", &format!("{rest} more labels"), true));
        kept
    } else {
        labels.iter().map(|(k, v)| field(k, v, true)).collect()
    };
    // Over the budget: labels go first (from the end; the times stay), then the description
    // is cut to what is left.
    let fields_size = |fields: &[Field]| {
        fields
            .iter()
            .map(|f| chars(&f.name) + chars(&f.value))
            .sum::<usize>()
    };
    let fixed = chars(&title) + DESCRIPTION_MIN + fields_size(&times);
    while !label_fields.is_empty() && fixed + fields_size(&label_fields) > EMBED_BUDGET {
        label_fields.pop();
    }
    let mut fields = label_fields;
    fields.extend(times);
    let used = chars(&title) + fields_size(&fields);
    let description = cut(
        &description,
        DESCRIPTION_MAX.min(EMBED_BUDGET.saturating_sub(used)),
    );
    let url = Some(alert.generator_url.clone())
        .filter(|u| (u.starts_with("http://") || u.starts_with("https://")) && u.len() <= 2048);
    Embed {
        title,
        description,
        url,
        color,
        fields,
        timestamp: alert
            .starts_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn header(group: &AlertGroup, alerts: &[&Alert]) -> String {
    let firing = alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Firing)
        .count();
    let resolved = alerts.len() - firing;
    let mut counts = Vec::new();
    if firing > 0 {
        counts.push(format!("{firing} firing"));
    }
    if resolved > 0 {
        counts.push(format!("{resolved} resolved"));
    }
    let labels: Vec<String> = group
        .group_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let group_name = if labels.is_empty() {
        group.group_key.clone()
    } else {
        labels.join(", ")
    };
    cut(
        &format!(
            "**[{}] {}** — {}",
            group.status.as_str().to_uppercase(),
            group_name,
            counts.join(", ")
        ),
        HEADER_MAX,
    )
}

/// The messages that carry `alerts` of `group`: embeds packed in order, at most 10 and 6000
/// characters per message; `content` names the group and, when split, the part.
#[must_use]
pub fn render(group: &AlertGroup, alerts: &[&Alert]) -> Vec<Rendered> {
    let header = header(group, alerts);
    let budget = MESSAGE_TOTAL_MAX - CONTENT_RESERVED;
    let mut parts: Vec<(Vec<Embed>, Vec<usize>)> = Vec::new();
    let mut size = 0;
    for (index, alert) in alerts.iter().enumerate() {
        let embed = embed(alert);
        let fits = parts
            .last()
            .is_some_and(|(e, _)| e.len() < EMBEDS_MAX && size + embed.size() <= budget);
        if !fits {
            parts.push((Vec::new(), Vec::new()));
            size = 0;
        }
        size += embed.size();
        if let Some((embeds, indices)) = parts.last_mut() {
            embeds.push(embed);
            indices.push(index);
        }
    }
    let total = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, (embeds, alerts))| {
            let content = if total > 1 {
                format!("{header} (part {}/{total})", i + 1)
            } else {
                header.clone()
            };
            Rendered {
                message: Message {
                    content: cut(&content, CONTENT_MAX),
                    username: "Curtain alerts".to_owned(),
                    embeds,
                    allowed_mentions: AllowedMentions { parse: Vec::new() },
                },
                alerts,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "discord_tests.rs"]
mod tests;
