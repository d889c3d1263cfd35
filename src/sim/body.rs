//! The body a payment processor receives on `POST /payments`, read as the official
//! processor's JSON binding reads it.

use crate::base::amount::ScaledAmount;
use crate::base::error::PaymentError;
use crate::base::iso8601::{parse_iso_ms_assume_utc, Round};
use crate::base::json::{read_object, set_once};
use crate::base::uuid::Uuid;

/// The body a payment processor receives on `POST /payments`, read and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessorPayment {
    /// The correlationId.
    pub id: Uuid,
    /// The amount as the processor stores it.
    pub amount: ScaledAmount,
    /// `requestedAt` in milliseconds since the Unix epoch (finer digits dropped).
    pub requested_at_ms: i64,
}

/// Reads the body of a processor's `POST /payments`: one JSON object with `correlationId`,
/// `amount` and `requestedAt`, each once, other keys skipped. Like the official processor's
/// JSON binding (System.Text.Json with web defaults), key names match whatever their ASCII
/// case, and a `requestedAt` with no zone is read as UTC. Otherwise as strict as
/// [`parse_payment`](crate::base::payment::parse_payment): the amount must be a JSON number, positive, at most [`MAX_CENTS`](crate::base::amount::MAX_CENTS).
///
/// Allocation-free; linear in `body.len()`. The first problem met is returned.
pub fn parse_processor_payment(body: &[u8]) -> Result<ProcessorPayment, PaymentError> {
    let mut id = None;
    let mut amount = None;
    let mut requested_at_ms = None;
    read_object(body, |key, value| {
        let Some(key) = key else { return Ok(()) };
        if key.eq_ignore_ascii_case(b"correlationId") {
            set_once(&mut id, || value.correlation_id())
        } else if key.eq_ignore_ascii_case(b"amount") {
            set_once(&mut amount, || value.amount())
        } else if key.eq_ignore_ascii_case(b"requestedAt") {
            set_once(&mut requested_at_ms, || {
                let text = value.string()?.ok_or(PaymentError::BadRequestedAt)?;
                let text = text.as_bytes().ok_or(PaymentError::BadRequestedAt)?;
                parse_iso_ms_assume_utc(text, Round::Down).map_err(|_| PaymentError::BadRequestedAt)
            })
        } else {
            Ok(())
        }
    })?;
    Ok(ProcessorPayment {
        id: id.ok_or(PaymentError::MissingCorrelationId)?,
        amount: amount.ok_or(PaymentError::MissingAmount)?,
        requested_at_ms: requested_at_ms.ok_or(PaymentError::MissingRequestedAt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3";
    const ID_BYTES: [u8; 16] = [
        0x4a, 0x79, 0x01, 0xb8, 0x7d, 0x26, 0x4d, 0x9d, 0xaa, 0x19, 0x4d, 0xc1, 0xc7, 0xcf, 0x60, 0xb3,
    ];

    /// Replaces `ID` in a body template with the test UUID.
    fn body(template: &str) -> String {
        template.replace("ID", ID)
    }

    #[test]
    fn processor_bodies_carry_scale_and_requested_at() {
        use PaymentError::*;
        let read = |t: &str| parse_processor_payment(body(t).as_bytes());
        let at =
            crate::base::iso8601::parse_iso_ms(b"2025-07-15T12:34:56.789Z", crate::base::iso8601::Round::Down).unwrap();
        let ok = |cents, scale| {
            Ok(ProcessorPayment {
                id: Uuid(ID_BYTES),
                amount: ScaledAmount { cents, scale },
                requested_at_ms: at,
            })
        };
        let table: &[(&str, Result<ProcessorPayment, PaymentError>)] = &[
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"requestedAt":"2025-07-15T12:34:56.789Z","amount":19.9,"correlationId":"ID"}"#,
                ok(1990, 1),
            ),
            (
                r#"{"correlationId":"ID","amount":20,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(2000, 0),
            ),
            (
                r#"{"correlationId":"ID","amount":2e1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(2000, 0),
            ),
            (
                r#"{"correlationId":"ID","amount":1.990e1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.905,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.915,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1992, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":1990e-2,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            // System.Text.Json's web defaults match names whatever their case.
            (
                r#"{"CorrelationId":"ID","AMOUNT":19.90,"requestedat":"2025-07-15T12:34:56.789Z"}"#,
                ok(1990, 2),
            ),
            // No zone: read as UTC; finer digits dropped.
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789"}"#,
                ok(1990, 2),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.7899Z"}"#,
                ok(1990, 2),
            ),
            (r#"{"correlationId":"ID","amount":19.90}"#, Err(MissingRequestedAt)),
            (
                r#"{"correlationId":"ID","requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(MissingAmount),
            ),
            (
                r#"{"amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(MissingCorrelationId),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":12}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"yesterday"}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56+03:00"}"#,
                Err(BadRequestedAt),
            ),
            (
                r#"{"correlationId":"ID","amount":"19.90","requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(AmountNotNumber),
            ),
            (
                r#"{"correlationId":"ID","correlationid":"ID","amount":1,"requestedAt":"2025-07-15T12:34:56.789Z"}"#,
                Err(DuplicateKey),
            ),
            (
                r#"{"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z",}"#,
                Err(ExpectedKey),
            ),
        ];
        for (text, expected) in table {
            assert_eq!(&read(text), expected, "{text}");
        }
    }

    #[test]
    fn every_proper_prefix_of_a_processor_body_is_an_error() {
        let text = body(r#" {"correlationId":"ID","amount":19.90,"requestedAt":"2025-07-15T12:34:56.789Z"} "#);
        let bytes = text.as_bytes();
        assert!(parse_processor_payment(bytes).is_ok());
        for end in 0..bytes.len() {
            if text[..end].trim_end() == text.trim_end() {
                continue;
            }
            assert!(
                parse_processor_payment(&bytes[..end]).is_err(),
                "prefix {:?}",
                &text[..end]
            );
        }
    }
}
