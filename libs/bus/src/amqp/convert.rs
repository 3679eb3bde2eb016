//! Translations between the bus's plain types and AMQP's: properties, header tables and
//! errors.

use std::collections::BTreeMap;

use lapin::BasicProperties;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::{BusError, OutMessage};

/// Persistent: messages survive a broker restart on durable queues.
const DELIVERY_MODE_PERSISTENT: u8 = 2;
/// Transient: hints need no disk write even where a durable queue is bound.
const DELIVERY_MODE_TRANSIENT: u8 = 1;

/// An AMQP short string (at most 255 bytes); longer input is an error, not a panic.
pub(crate) fn short(value: &str, what: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(value).map_err(|_| BusError::Other(format!("{what} is longer than 255 bytes")))
}

/// Properties of an outgoing message: persistent (or transient, for hints), with its
/// headers as long strings.
pub(crate) fn properties(msg: &OutMessage, persistent: bool) -> Result<BasicProperties, BusError> {
    let mode = if persistent { DELIVERY_MODE_PERSISTENT } else { DELIVERY_MODE_TRANSIENT };
    let mut props = BasicProperties::default().with_delivery_mode(mode);
    if let Some(content_type) = &msg.content_type {
        props = props.with_content_type(short(content_type, "content type")?);
    }
    if let Some(reply_to) = &msg.reply_to {
        props = props.with_reply_to(short(reply_to, "reply_to")?);
    }
    if let Some(correlation_id) = &msg.correlation_id {
        props = props.with_correlation_id(short(correlation_id, "correlation id")?);
    }
    if !msg.headers.is_empty() {
        let mut table = FieldTable::default();
        for (key, value) in &msg.headers {
            table.insert(short(key, "header name")?, AMQPValue::LongString(LongString::from(value.as_bytes())));
        }
        props = props.with_headers(table);
    }
    Ok(props)
}

/// Header table of a received message as strings. Foreign publishers send numbers and
/// booleans too; nested tables and arrays (e.g. RabbitMQ's own `x-death`) have no faithful
/// string form and are left out.
pub(crate) fn headers(table: Option<&FieldTable>) -> BTreeMap<String, String> {
    let Some(table) = table else {
        return BTreeMap::new();
    };
    table.inner().iter().filter_map(|(key, value)| Some((key.as_str().to_owned(), value_to_string(value)?))).collect()
}

fn value_to_string(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::DecimalValue(d) => decimal_to_string(d.value, d.scale),
        AMQPValue::Void => String::new(),
        AMQPValue::FieldArray(_) | AMQPValue::FieldTable(_) => return None,
    })
}

fn decimal_to_string(value: u32, scale: u8) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

/// How a lapin error surfaces, and whether it suggests the connection is gone (so the
/// supervisor should check it now rather than at its next tick).
pub(crate) fn classify(err: &lapin::Error) -> (BusError, bool) {
    use lapin::ErrorKind as K;
    match err.kind() {
        K::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(soft) => (soft_error(soft, amqp.get_message().as_str()), false),
            AMQPErrorKind::Hard(_) => (BusError::Unavailable(format!("connection closed by broker: {err}")), true),
        },
        K::IOError(_) | K::InvalidConnectionState(_) | K::MissingHeartbeatError | K::RuntimeShutdownError(_) => {
            (BusError::Unavailable(err.to_string()), true)
        }
        // A channel closed by an earlier error: the next operation opens a fresh one.
        K::InvalidChannelState(..) | K::InvalidChannel(_) => (BusError::Unavailable(err.to_string()), false),
        _ => (BusError::Other(err.to_string()), false),
    }
}

fn soft_error(soft: &AMQPSoftError, message: &str) -> BusError {
    match soft {
        AMQPSoftError::NOTFOUND => BusError::Other(format!("not found: {message}")),
        _ => BusError::Other(format!("broker refused: {message}")),
    }
}

/// True when the broker refused a consumer because of another (exclusive) consumer.
pub(crate) fn is_access_refused(err: &lapin::Error) -> bool {
    matches!(
        err.kind(),
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED | AMQPSoftError::RESOURCELOCKED))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_as_long_strings() {
        let msg = OutMessage::new(b"x".to_vec()).header("a", "1").header("b", "two");
        let props = properties(&msg, true).expect("valid properties");
        assert_eq!(props.delivery_mode(), &Some(2));
        assert_eq!(properties(&msg, false).expect("valid properties").delivery_mode(), &Some(1));
        let back = headers(props.headers().as_ref());
        assert_eq!(back, msg.headers);
    }

    #[test]
    fn foreign_header_types_become_strings() {
        let mut table = FieldTable::default();
        table.insert("int".into(), AMQPValue::LongInt(-3));
        table.insert("long".into(), AMQPValue::LongLongInt(9_000_000_000));
        table.insert("byte".into(), AMQPValue::ShortShortUInt(2));
        table.insert("flag".into(), AMQPValue::Boolean(true));
        table.insert("short".into(), AMQPValue::ShortString("s".into()));
        table.insert("dec".into(), AMQPValue::DecimalValue(lapin::types::DecimalValue { scale: 2, value: 5 }));
        table.insert("nested".into(), AMQPValue::FieldTable(FieldTable::default()));
        let got = headers(Some(&table));
        let want: BTreeMap<String, String> =
            [("int", "-3"), ("long", "9000000000"), ("byte", "2"), ("flag", "true"), ("short", "s"), ("dec", "0.05")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn decimals_place_the_point() {
        assert_eq!(decimal_to_string(12345, 2), "123.45");
        assert_eq!(decimal_to_string(7, 0), "7");
        assert_eq!(decimal_to_string(7, 3), "0.007");
    }

    #[test]
    fn overlong_names_are_errors_not_panics() {
        let long = "h".repeat(256);
        let msg = OutMessage::new(vec![]).header(long, "v");
        assert!(matches!(properties(&msg, true), Err(BusError::Other(_))));
        assert!(short(&"q".repeat(255), "queue").is_ok());
    }
}
