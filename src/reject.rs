//! Why a request was refused: the one place that maps every rejection to its HTTP status, its
//! `reason` label (a fixed set, SPEC §8) and the short human message in the response body.
//!
//! Module errors (`RwError`, `RumError`, `BodyError`, ...) convert into [`Reject`]; nothing
//! else in the crate picks a status code for an ingest error.

/// A rejection reason. `Copy`, so the hot path never allocates to refuse a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    MissingToken,
    ConflictingTokens,
    MalformedToken,
    UnknownToken,
    RevokedToken,
    WrongTokenType,
    MissingOrigin,
    OriginNotAllowed,
    /// More than one `Origin` header: which one the browser meant is unknowable.
    BadOrigin,
    RateLimited,
    TooLarge,
    UnsupportedMediaType,
    BadEncoding,
    BadPayload,
    InvalidSeries,
    TooManyLabels,
    LabelNameTooLong,
    LabelValueTooLong,
    SampleTooFarInFuture,
    Timeout,
    Overloaded,
    /// The abuse monitor's `throttle` response (SPEC §12).
    SpikeProtection,
    /// Disabled by an operator or the abuse monitor's `block` response.
    TokenDisabled,
    /// A mobile token in attestation mode `enforce` without a valid App Check token (SPEC §14).
    AttestationFailed,
}

impl Reason {
    /// Every reason, in label order; `usage` sizes its counter arrays from this.
    pub const ALL: [Reason; 24] = [
        Reason::MissingToken,
        Reason::ConflictingTokens,
        Reason::MalformedToken,
        Reason::UnknownToken,
        Reason::RevokedToken,
        Reason::WrongTokenType,
        Reason::MissingOrigin,
        Reason::OriginNotAllowed,
        Reason::BadOrigin,
        Reason::RateLimited,
        Reason::TooLarge,
        Reason::UnsupportedMediaType,
        Reason::BadEncoding,
        Reason::BadPayload,
        Reason::InvalidSeries,
        Reason::TooManyLabels,
        Reason::LabelNameTooLong,
        Reason::LabelValueTooLong,
        Reason::SampleTooFarInFuture,
        Reason::Timeout,
        Reason::Overloaded,
        Reason::SpikeProtection,
        Reason::TokenDisabled,
        Reason::AttestationFailed,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::MissingToken => "missing_token",
            Reason::ConflictingTokens => "conflicting_tokens",
            Reason::MalformedToken => "malformed_token",
            Reason::UnknownToken => "unknown_token",
            Reason::RevokedToken => "revoked_token",
            Reason::WrongTokenType => "wrong_token_type",
            Reason::MissingOrigin => "missing_origin",
            Reason::OriginNotAllowed => "origin_not_allowed",
            Reason::BadOrigin => "bad_origin",
            Reason::RateLimited => "rate_limited",
            Reason::TooLarge => "too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::BadEncoding => "bad_encoding",
            Reason::BadPayload => "bad_payload",
            Reason::InvalidSeries => "invalid_series",
            Reason::TooManyLabels => "too_many_labels",
            Reason::LabelNameTooLong => "label_name_too_long",
            Reason::LabelValueTooLong => "label_value_too_long",
            Reason::SampleTooFarInFuture => "sample_too_far_in_future",
            Reason::Timeout => "timeout",
            Reason::Overloaded => "overloaded",
            Reason::SpikeProtection => "spike_protection",
            Reason::TokenDisabled => "token_disabled",
            Reason::AttestationFailed => "attestation_failed",
        }
    }

    pub fn from_label(label: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.label() == label)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A refused request: reason, status, message and (for throttling) when to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub reason: Reason,
    pub status: u16,
    /// Short human reason sent in the body.
    pub message: &'static str,
    /// A more precise message built by the module that refused (e.g. which series); only
    /// allocated on the error path.
    pub detail: Option<String>,
    /// Seconds for `Retry-After` (throttling and overload only).
    pub retry_after: Option<u32>,
}

impl Reject {
    /// The status a reason gets when the module did not choose a more specific one.
    pub fn new(reason: Reason) -> Reject {
        let (status, message) = match reason {
            Reason::MissingToken => (401, "missing token: send Authorization: Bearer <token>"),
            Reason::ConflictingTokens => (400, "two different tokens in header and query"),
            Reason::MalformedToken => (401, "malformed token"),
            Reason::UnknownToken => (401, "unknown token"),
            Reason::RevokedToken => (401, "revoked token"),
            Reason::WrongTokenType => (403, "this token type cannot be used on this endpoint"),
            Reason::MissingOrigin => (403, "missing or null Origin"),
            Reason::OriginNotAllowed => (403, "origin not allowed for this token"),
            Reason::BadOrigin => (400, "more than one Origin header"),
            Reason::RateLimited => (429, "rate limit exceeded"),
            Reason::TooLarge => (413, "request body too large"),
            Reason::UnsupportedMediaType => (415, "unsupported Content-Type or Content-Encoding"),
            Reason::BadEncoding => (400, "body could not be decompressed"),
            Reason::BadPayload => (400, "body could not be decoded"),
            Reason::InvalidSeries => (400, "invalid series"),
            Reason::TooManyLabels => (400, "series has too many labels"),
            Reason::LabelNameTooLong => (400, "label name too long"),
            Reason::LabelValueTooLong => (400, "label value too long"),
            Reason::SampleTooFarInFuture => (400, "sample timestamp too far in the future"),
            Reason::Timeout => (408, "request body not received in time"),
            Reason::Overloaded => (503, "overloaded, retry later"),
            Reason::SpikeProtection => (
                429,
                "spike_protection: this token's traffic is far above its usual rate and is \
                 throttled by abuse monitoring; retry later",
            ),
            Reason::TokenDisabled => (403, "token_disabled: this token is disabled"),
            Reason::AttestationFailed => (401, "App Check attestation missing or invalid"),
        };
        Reject {
            reason,
            status,
            message,
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_message(mut self, message: &'static str) -> Reject {
        self.message = message;
        self
    }

    pub fn with_detail(mut self, detail: String) -> Reject {
        self.detail = Some(detail);
        self
    }

    /// The gRPC code of a RUM error body (`google.rpc.Status`, SPEC §15), from the status so
    /// the two never disagree. 429 and 503 are `UNAVAILABLE` (14), as in gRPC's own HTTP
    /// mapping: it is the code OTLP exporters always retry, while `RESOURCE_EXHAUSTED` is
    /// retried only with a `RetryInfo` detail, which the edge does not send (its
    /// `Retry-After` header says when).
    pub fn grpc_code(&self) -> i32 {
        match self.status {
            400 | 413 | 415 => 3, // INVALID_ARGUMENT
            401 => 16,            // UNAUTHENTICATED
            403 => 7,             // PERMISSION_DENIED
            404 => 5,             // NOT_FOUND
            408 => 4,             // DEADLINE_EXCEEDED
            429 | 503 => 14,      // UNAVAILABLE
            _ => 13,              // INTERNAL
        }
    }

    /// The body text of the response.
    pub fn text(&self) -> &str {
        self.detail.as_deref().unwrap_or(self.message)
    }

    pub fn with_status(mut self, status: u16) -> Reject {
        self.status = status;
        self
    }

    pub fn retry_after(mut self, secs: u32) -> Reject {
        self.retry_after = Some(secs.max(1));
        self
    }
}

impl From<Reason> for Reject {
    fn from(r: Reason) -> Reject {
        Reject::new(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Reason::from_label(r.label()), Some(*r));
        }
    }

    #[test]
    fn statuses_follow_the_spec() {
        assert_eq!(Reject::new(Reason::UnknownToken).status, 401);
        assert_eq!(Reject::new(Reason::WrongTokenType).status, 403);
        assert_eq!(Reject::new(Reason::OriginNotAllowed).status, 403);
        assert_eq!(Reject::new(Reason::TooLarge).status, 413);
        assert_eq!(Reject::new(Reason::UnsupportedMediaType).status, 415);
        assert_eq!(Reject::new(Reason::UnknownToken).grpc_code(), 16);
        assert_eq!(Reject::new(Reason::OriginNotAllowed).grpc_code(), 7);
        assert_eq!(Reject::new(Reason::TooLarge).grpc_code(), 3);
        assert_eq!(Reject::new(Reason::RateLimited).grpc_code(), 14);
        assert_eq!(Reject::new(Reason::Overloaded).grpc_code(), 14);
        for r in Reason::ALL {
            assert_ne!(Reject::new(r).grpc_code(), 0, "{r:?}");
        }
        assert_eq!(
            Reject::new(Reason::RateLimited).retry_after(0).retry_after,
            Some(1)
        );
    }
}
