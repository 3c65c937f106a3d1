//! `POST /alerts/alertmanager`: Alertmanager's webhook receiver. One accepted alert group is
//! one `deliver_alert` job (Discord delivery happens in the job, not in the request).
//!
//! Rules: no token configured is a 503 (the operator must set `ALERTMANAGER_WEBHOOK_TOKEN`);
//! a missing or wrong bearer token is a 401; anything but a version-4 payload with at least
//! one alert is a 400 that says what is wrong.

use std::collections::HashMap;

use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};

use super::{Api, Tag};
use crate::body::JsonBody;
use crate::error::ErrorBody;

/// Most alerts accepted in one group.
pub const MAX_ALERTS: usize = 1_000;

/// `Authorization: Bearer <ALERTMANAGER_WEBHOOK_TOKEN>` (Alertmanager's
/// `http_config.authorization.credentials`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer")]
pub struct AlertmanagerToken(Bearer);

/// One alert of the group.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AlertmanagerAlert {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: HashMap<String, String>,
    pub annotations: Option<HashMap<String, String>>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing.
    pub ends_at: Option<String>,
    #[oai(rename = "generatorURL")]
    pub generator_url: Option<String>,
    pub fingerprint: Option<String>,
}

/// Alertmanager's webhook payload, version 4 (one alert group).
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct AlertmanagerWebhook {
    /// Must be `"4"`.
    pub version: String,
    pub group_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    pub receiver: Option<String>,
    pub group_labels: Option<HashMap<String, String>>,
    pub common_labels: Option<HashMap<String, String>>,
    pub common_annotations: Option<HashMap<String, String>>,
    #[oai(rename = "externalURL")]
    pub external_url: Option<String>,
    /// At least one, at most 1000.
    pub alerts: Vec<AlertmanagerAlert>,
}

/// The group was accepted for delivery.
#[derive(Debug, Object)]
pub struct AlertsAccepted {
    /// Id of the delivery job (in the logs of its delivery).
    pub delivery_id: String,
    /// Alerts in the group.
    pub alerts: u64,
}

#[derive(ApiResponse)]
pub enum Accepted {
    /// Enqueued; Discord delivery follows (retried until Discord confirms).
    #[oai(status = 202)]
    Accepted(Json<AlertsAccepted>),
}

/// Errors of the Alertmanager receiver.
#[derive(Debug, ApiResponse)]
pub enum AlertIntakeError {
    /// Not an Alertmanager version-4 payload with alerts; the message says why.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or wrong bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The request body is larger than 2 MiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// An unexpected failure; it is logged with the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// Alert intake is not configured (`ALERTMANAGER_WEBHOOK_TOKEN`, or in the embedded
    /// default `DISCORD_WEBHOOK_URL`), or the alert queue is unreachable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

fn body(message: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody {
        error: message.into(),
    })
}

pub struct AlertsApi(pub Api);

#[OpenApi(tag = "Tag::Alerts")]
impl AlertsApi {
    /// Receive Alertmanager alerts
    ///
    /// Alertmanager's webhook (`webhook_configs`, payload version 4). Each call is one alert
    /// group, delivered to the Discord webhooks of `DISCORD_WEBHOOK_URL` as one embed per
    /// alert (red firing, green resolved); the same alert is not delivered twice within
    /// `ALERT_REPEAT_WINDOW_SECONDS`.
    #[oai(path = "/alerts/alertmanager", method = "post")]
    async fn alertmanager(
        &self,
        auth: AlertmanagerToken,
        payload: JsonBody<AlertmanagerWebhook>,
    ) -> Result<Accepted, AlertIntakeError> {
        let intake = &self.0.alerts;
        if intake.token.is_none() {
            return Err(AlertIntakeError::Unavailable(body(
                "Alert intake is disabled: ALERTMANAGER_WEBHOOK_TOKEN is not configured",
            )));
        }
        if !intake.authorised(&auth.0.token) {
            return Err(AlertIntakeError::Unauthorized(body("Invalid bearer token")));
        }
        let Some(value) = payload.value.filter(serde_json::Value::is_object) else {
            return Err(AlertIntakeError::BadRequest(body(
                "Request body must be an Alertmanager webhook payload (a JSON object)",
            )));
        };
        let group: jobs::AlertGroup = serde_json::from_value(value).map_err(|e| {
            AlertIntakeError::BadRequest(body(format!("Invalid Alertmanager payload: {e}")))
        })?;
        if group.version != "4" {
            return Err(AlertIntakeError::BadRequest(body(format!(
                "Unsupported Alertmanager payload version {:?} (expected \"4\")",
                group.version
            ))));
        }
        if group.alerts.is_empty() || group.alerts.len() > MAX_ALERTS {
            return Err(AlertIntakeError::BadRequest(body(format!(
                "An alert group must have 1 to {MAX_ALERTS} alerts (got {})",
                group.alerts.len()
            ))));
        }
        let alerts = group.alerts.len() as u64;
        match intake.enqueue(group).await {
            Ok(Some(delivery_id)) => Ok(Accepted::Accepted(Json(AlertsAccepted {
                delivery_id,
                alerts,
            }))),
            Ok(None) => Err(AlertIntakeError::Unavailable(body(
                "Alert delivery is disabled: DISCORD_WEBHOOK_URL is not configured",
            ))),
            Err(e) => {
                tracing::error!(error = %e, "enqueueing an alert delivery failed");
                Err(AlertIntakeError::Unavailable(body(
                    "The alert queue is unreachable; Alertmanager will retry",
                )))
            }
        }
    }
}
