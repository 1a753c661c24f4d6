//! Readings over MQTT: one subscription (QoS 1, a persistent session, manual acknowledgements)
//! and alerts published back. A message is acknowledged only once its reading is recorded (or
//! refused for good), so a gateway killed in between gets it again from the broker; the reading
//! id makes the second delivery a no-op.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tracing::{info, warn};

use crate::config::Config;
use crate::ingest::{Alert, AlertSink, Ingest, Ingested};
use crate::payload;

/// Requests the client may queue for the event loop (acks and alerts).
const CLIENT_QUEUE: usize = 256;

/// Alerts as QoS 1 messages on `{prefix}/{sensor}`.
pub struct MqttAlerts {
    client: AsyncClient,
    prefix: String,
}

impl AlertSink for MqttAlerts {
    fn alert(&self, alert: &Alert) {
        let topic = format!("{}/{}", self.prefix, alert.sensor);
        match serde_json::to_vec(alert) {
            Ok(body) => {
                if let Err(e) = self.client.try_publish(topic, QoS::AtLeastOnce, false, body) {
                    warn!("alert not published: {e}");
                }
            }
            Err(e) => warn!("alert not encoded: {e}"),
        }
    }
}

/// The connection: options from the config; the caller runs [`run`].
pub fn connect(config: &Config) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(&config.client_id, &config.mqtt_host, config.mqtt_port);
    options.set_keep_alive(Duration::from_secs(10));
    // The broker keeps the subscription and queues QoS 1 readings while the gateway is away.
    options.set_clean_session(false);
    options.set_manual_acks(true);
    options
        .set_max_packet_size(payload::MAX_PAYLOAD_BYTES + 1024, payload::MAX_PAYLOAD_BYTES + 1024);
    AsyncClient::new(options, CLIENT_QUEUE)
}

/// The alert sink on `client`.
pub fn alerts(client: &AsyncClient, config: &Config) -> MqttAlerts {
    MqttAlerts { client: client.clone(), prefix: config.alerts_topic.clone() }
}

/// The sensor a topic names: its last level.
fn sensor_of(topic: &str) -> &str {
    topic.rsplit('/').next().unwrap_or(topic)
}

/// Reads messages until the process stops; reconnects (and resubscribes when the broker lost
/// the session) after any connection error, waiting a second between attempts.
pub async fn run(
    client: AsyncClient,
    mut events: EventLoop,
    topic: String,
    ingest: Ingest<MqttAlerts>,
) {
    let mut connected = false;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                info!(session_present = ack.session_present, "connected to the broker");
                connected = true;
                if !ack.session_present {
                    if let Err(e) = client.try_subscribe(topic.as_str(), QoS::AtLeastOnce) {
                        warn!("subscribe: {e}");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => info!(topic = topic.as_str(), "subscribed"),
            Ok(Event::Incoming(Packet::Publish(message))) => {
                handle(&client, &ingest, message).await
            }
            Ok(_) => {}
            Err(e) => {
                if connected {
                    warn!("broker connection lost: {e}");
                    connected = false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn handle(client: &AsyncClient, ingest: &Ingest<MqttAlerts>, message: Publish) {
    let sensor = sensor_of(&message.topic);
    let outcome = ingest.payload(sensor, payload::parse(&message.payload)).await;
    match outcome {
        Ingested::Recorded(_) | Ingested::Refused(_) => {
            if let Err(e) = client.try_ack(&message) {
                warn!("ack: {e}");
            }
        }
        // Not acknowledged: the broker delivers it again after the next reconnect.
        Ingested::Failed(_) => {}
    }
}
