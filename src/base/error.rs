//! Why a payment body was refused: one error type for the JSON reader, the amount
//! conversion and the bodies read on top of them, each with a sentence fit for a 400.

/// Why a payment body was refused. Each variant has a one-sentence [`reason`](Self::reason)
/// fit to be sent back inside a JSON string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentError {
    /// The body (after whitespace) does not start with `{`, or is empty.
    NotAnObject,
    /// The body ended before the object, a string, a number or a literal was complete.
    Truncated,
    /// Where an object member was due, something other than a quoted key was found.
    ExpectedKey,
    /// A key was not followed by `:`.
    ExpectedColon,
    /// A member was followed by something other than `,` or the closing bracket.
    ExpectedCommaOrEnd,
    /// A string holds a raw control character, a bad escape, a lone surrogate or invalid UTF-8.
    BadString,
    /// The value of an ignored key is not valid JSON (a bad number or literal, say).
    BadValue,
    /// Values are nested deeper than [`MAX_DEPTH`](crate::base::json::MAX_DEPTH).
    TooDeep,
    /// Something other than whitespace follows the object.
    TrailingData,
    /// The same key (after decoding escapes) appears twice.
    DuplicateKey,
    /// There is no `correlationId` key.
    MissingCorrelationId,
    /// There is no `amount` key.
    MissingAmount,
    /// `correlationId` is not a string holding a canonical UUID.
    BadCorrelationId,
    /// `amount` is not a JSON number (a string, `null`, `NaN`, `+1`, `01`...).
    AmountNotNumber,
    /// `amount` is zero or negative once rounded to cents.
    AmountNotPositive,
    /// `amount` is above [`MAX_CENTS`](crate::base::amount::MAX_CENTS) once rounded to cents.
    AmountTooLarge,
    /// There is no `requestedAt` key (processor bodies only).
    MissingRequestedAt,
    /// `requestedAt` is not a string holding an ISO-8601 timestamp (processor bodies only).
    BadRequestedAt,
}

impl PaymentError {
    /// One human sentence saying what is wrong; it holds no quote or backslash, so it can be
    /// pasted into a JSON string as is.
    pub fn reason(self) -> &'static str {
        match self {
            PaymentError::NotAnObject => "body must be a JSON object",
            PaymentError::Truncated => "body ended before the JSON object was complete",
            PaymentError::ExpectedKey => "expected a quoted key in the JSON object",
            PaymentError::ExpectedColon => "expected a colon after a key in the JSON object",
            PaymentError::ExpectedCommaOrEnd => {
                "expected a comma or a closing bracket after a value in the JSON object"
            }
            PaymentError::BadString => "a JSON string holds a control character, a bad escape or invalid UTF-8",
            PaymentError::BadValue => "a value in the JSON object is not valid JSON",
            PaymentError::TooDeep => "JSON values are nested too deeply",
            PaymentError::TrailingData => "unexpected data after the JSON object",
            PaymentError::DuplicateKey => "a key appears twice in the JSON object",
            PaymentError::MissingCorrelationId => "correlationId is missing",
            PaymentError::MissingAmount => "amount is missing",
            PaymentError::BadCorrelationId => {
                "correlationId must be a UUID string like 4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"
            }
            PaymentError::AmountNotNumber => "amount must be a JSON number like 19.90",
            PaymentError::AmountNotPositive | PaymentError::AmountTooLarge => {
                "amount must be a positive number with at most 10000000.00"
            }
            PaymentError::MissingRequestedAt => "requestedAt is missing",
            PaymentError::BadRequestedAt => {
                "requestedAt must be an ISO-8601 timestamp string like 2025-07-10T12:34:56.000Z"
            }
        }
    }
}

impl std::fmt::Display for PaymentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PaymentError {}
