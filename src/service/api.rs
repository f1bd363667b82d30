//! The signing service's wire: paths, headers and JSON bodies of API
//! version 1, and how an exit code becomes an HTTP status (and back, on
//! the client). `docs/service.md` describes the same.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::failure::exit;

/// The API version this build speaks; every JSON body carries it.
pub const API_VERSION: u32 = 1;

/// `POST /v1/sign/{zone}`: the zone file as the body, the options as
/// JSON in [`OPTIONS_HEADER`]; the signed zone comes back as the body.
pub const SIGN_PATH: &str = "/v1/sign/{zone}";
pub const STATUS_PATH: &str = "/v1/status";
pub const HEALTH_PATH: &str = "/v1/health";
pub const METRICS_PATH: &str = "/metrics";

/// The signing arguments ([`crate::sign::request::SignArgs`]) as JSON.
pub const OPTIONS_HEADER: &str = "dnsseal-options";
/// `--incremental`: the SHA-256 (hex) of the client's previous signed
/// zone; the service reuses its own copy of that output when they match.
pub const PREVIOUS_HEADER: &str = "dnsseal-previous-sha256";
/// The client's file name (no directory), for the service's messages:
/// an error at line 7 of the upload reads `db.example:7: ...`.
pub const FILE_HEADER: &str = "dnsseal-file";
/// On a signed zone's response: [`SignResult`] as JSON.
pub const RESULT_HEADER: &str = "dnsseal-result";

/// What a signing request did (the response's [`RESULT_HEADER`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignResult {
    pub api: u32,
    pub zone: String,
    pub serial_in: u32,
    pub serial_out: u32,
    pub signatures_generated: usize,
    pub signatures_retained: usize,
    pub signatures_dropped: usize,
    pub seconds: f64,
    pub signing_seconds: f64,
    pub key_tags: Vec<u16>,
    /// "state" or "text" when previous signatures were reused, else none.
    pub incremental_from: Option<String>,
    /// Whether `--incremental` found the service's copy of the client's
    /// previous output ("used"), another one ("mismatch": signed in
    /// full), or none ("none").
    pub previous: String,
    /// SHA-256 (hex) of the zone as received and of the signed zone.
    pub input_sha256: String,
    pub output_sha256: String,
    /// The earliest RRSIG expiration in the signed zone (RFC 3339).
    pub earliest_expiry: Option<String>,
}

/// Every refusal and failure: the exit code and message the local
/// command would give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub api: u32,
    pub exit_code: u8,
    pub error: String,
    /// Seconds to wait before trying again (also in Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// The token as the service sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenHealth {
    /// "present", "away", or "unknown" before the first look.
    pub state: String,
    /// Since when (RFC 3339).
    pub since: Option<String>,
    /// The last fault, naming the PKCS#11 function and code.
    pub error: Option<String>,
}

/// `GET /v1/health`: 200 while the token is present, 503 otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub api: u32,
    pub token: TokenHealth,
    pub jobs_running: usize,
    pub stopping: bool,
    /// The earliest signature expiry of the zones this service signed,
    /// and the seconds left until then: how long the token may stay away.
    pub earliest_expiry: Option<String>,
    pub seconds_left: Option<i64>,
}

/// One zone in `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneStatus {
    pub zone: String,
    pub keys: Vec<KeyStatus>,
    /// The rollover in progress and its next step, when there is one.
    pub rollover: Option<String>,
    pub next_step: Option<String>,
    pub last_signed: Option<LastSigned>,
}

/// A key in a zone's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub tag: u16,
    pub role: String,
    pub algorithm: String,
    pub state: String,
}

/// The service's last signing of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastSigned {
    pub at: String,
    pub serial: u32,
    pub output_sha256: String,
    pub earliest_expiry: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub api: u32,
    pub token: TokenHealth,
    pub jobs_running: usize,
    pub zones: Vec<ZoneStatus>,
}

/// The HTTP status for a failure with this exit code.
pub fn http_status(code: u8) -> StatusCode {
    match code {
        exit::BAD_INPUT | exit::UNSUPPORTED => StatusCode::UNPROCESSABLE_ENTITY,
        exit::REFUSED | exit::DRIFT => StatusCode::CONFLICT,
        exit::MODULE | exit::TOKEN | exit::PIN | exit::PIN_LOCKED | exit::TOKEN_FAILED => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        exit::UNAVAILABLE => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The exit code for an HTTP status that came without a JSON body (a
/// proxy's answer, or a server of another version).
pub fn exit_code_of(status: StatusCode) -> u8 {
    match status {
        StatusCode::FORBIDDEN => exit::REFUSED,
        StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::BAD_REQUEST
        | StatusCode::UNPROCESSABLE_ENTITY => exit::BAD_INPUT,
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::GATEWAY_TIMEOUT => exit::UNAVAILABLE,
        _ => exit::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_the_exit_codes_back() {
        // What the client makes of a bare status is what the server meant.
        for code in [exit::BAD_INPUT, exit::UNAVAILABLE] {
            assert_eq!(exit_code_of(http_status(code)), code, "{code}");
        }
        assert_eq!(
            http_status(exit::TOKEN_FAILED),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(exit::FAILURE),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(exit_code_of(StatusCode::FORBIDDEN), exit::REFUSED);
        assert_eq!(exit_code_of(StatusCode::PAYLOAD_TOO_LARGE), exit::BAD_INPUT);
        assert_eq!(exit_code_of(StatusCode::IM_A_TEAPOT), exit::FAILURE);
    }

    #[test]
    fn an_error_body_reads_back() {
        let body = ErrorBody {
            api: API_VERSION,
            exit_code: 3,
            error: "db.example:7: bad record".into(),
            retry_after: None,
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("retry_after"));
        assert_eq!(serde_json::from_str::<ErrorBody>(&json).unwrap(), body);
    }
}
