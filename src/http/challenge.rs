//! Claims challenges (Microsoft identity platform: "Claims challenges, claims requests
//! and client capabilities"): the `WWW-Authenticate` value that tells an Entra-aware
//! client (one whose token says `xms_cc` contains `cp1`) to go back to Entra for a token
//! satisfying some claims — a stronger sign-in (`acrs`) or a fresh token after a
//! revocation (`nbf`, the CAE form).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `Bearer realm="", authorization_uri="{authority}/common/oauth2/authorize",
/// error="insufficient_claims", claims="<base64 of claims_json>"`.
pub fn insufficient_claims(authority: &str, claims_json: &str) -> String {
    format!(
        "Bearer realm=\"\", authorization_uri=\"{authority}/common/oauth2/authorize\", \
         error=\"insufficient_claims\", claims=\"{}\"",
        STANDARD.encode(claims_json)
    )
}

/// The claims request for an authentication context: `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`.
pub fn auth_context_claims(context: &str) -> String {
    // The decision builds the same request for its `StepUpRequired` reason: one spelling.
    crate::decision::auth_context_claims(context)
}

/// The CAE claims request after a revocation: `{"access_token":{"nbf":{"essential":true,"value":"<unix time>"}}}`.
pub fn fresh_token_claims(not_before: u64) -> String {
    serde_json::json!({"access_token": {"nbf": {"essential": true, "value": not_before.to_string()}}})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_matches_microsofts_form() {
        let claims = auth_context_claims("c1");
        assert_eq!(
            claims,
            r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#
        );
        assert_eq!(
            insufficient_claims("https://login.microsoftonline.com", &claims),
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", \
             error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\""
        );
        assert_eq!(
            fresh_token_claims(1700000000),
            r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#
        );
    }
}
