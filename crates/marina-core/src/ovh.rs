//! OVH API applications and signed requests, for the OVH adapter.
//!
//! Rules (OVH's "first steps with the API"):
//! - A tenant admin registers an application: a key (`X-Ovh-Application`) and
//!   a secret, shown once and kept sealed (the signature check needs it).
//! - The consumer key (`X-Ovh-Consumer`) is a Marina token's secret; it must
//!   belong to the application's tenant.
//! - `X-Ovh-Timestamp` must be within `TIME_WINDOW_SECS` of the server clock
//!   (`GET /1.0/auth/time` gives it).
//! - `X-Ovh-Signature` must be `"$1$" + sha1_hex(AS+"+"+CK+"+"+METHOD+"+"+URL+"+"+BODY+"+"+TS)`,
//!   compared in constant time.
//!
//! Checked in that order: key, time, signature, consumer key.

use marina_common::model::{CreateOvhApplicationInput, OvhApplication, Scope};
use marina_common::{Error, ids, time_fmt};
use sha1::{Digest, Sha1};

use crate::Marina;
use crate::auth::AuthContext;

/// How far a request's timestamp may be from the server clock.
pub const TIME_WINDOW_SECS: i64 = 180;

/// What a signed request carries.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub application: Option<&'a str>,
    pub consumer: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub method: &'a str,
    /// The full URL the client called (scheme, host, path, query).
    pub url: &'a str,
    pub body: &'a [u8],
}

/// Why a signed request is refused (each has OVH's own error code).
#[derive(Debug)]
pub enum OvhRefusal {
    /// No or unknown application key (403 `INVALID_KEY`).
    InvalidKey,
    /// Missing timestamp, or too far from the server clock (400 `QUERY_TIME_OUT`).
    QueryTimeOut,
    /// Missing or wrong signature (400 `INVALID_SIGNATURE`).
    InvalidSignature,
    /// No, unknown or foreign consumer key (403 `INVALID_CREDENTIAL`).
    InvalidCredential,
    /// The store or the secret box failed.
    Failed(Error),
}

/// OVH's request signature.
pub fn signature(secret: &str, consumer: &str, method: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    let mut h = Sha1::new();
    for part in [
        secret.as_bytes(),
        consumer.as_bytes(),
        method.as_bytes(),
        url.as_bytes(),
        body,
    ] {
        h.update(part);
        h.update(b"+");
    }
    h.update(timestamp.as_bytes());
    format!("$1${}", hex::encode(h.finalize()))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `timestamp` (unix seconds) is within the window of `now`.
pub fn timely(timestamp: &str, now: i64) -> bool {
    timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| (t - now).abs() <= TIME_WINDOW_SECS)
}

impl Marina {
    /// Registers an OVH application in the caller's tenant; returns it with
    /// its secret (the only time it is shown).
    pub async fn create_ovh_app(
        &self,
        auth: &AuthContext,
        input: CreateOvhApplicationInput,
    ) -> Result<(OvhApplication, String), Error> {
        auth.require(Scope::Admin)?;
        ids::validate_name(&input.name).map_err(Error::InvalidRequest)?;
        let app = OvhApplication {
            application_key: ids::random_password(16),
            tenant_id: auth.tenant_id.clone(),
            name: input.name,
            created_at: time_fmt::now_rfc3339(),
        };
        let secret = ids::random_password(32);
        self.store
            .create_ovh_app(
                &app,
                &self.secrets.seal(
                    secret.as_bytes(),
                    crate::secrets::SealedFor::OvhApplication(&app.application_key),
                ),
            )
            .await?;
        Ok((app, secret))
    }

    /// The tenant's OVH applications (never their secrets).
    pub async fn list_ovh_apps(&self, auth: &AuthContext) -> Result<Vec<OvhApplication>, Error> {
        auth.require(Scope::Admin)?;
        Ok(self.store.list_ovh_apps(&auth.tenant_id).await?)
    }

    /// Deletes an OVH application: requests signed with it are refused at once.
    pub async fn delete_ovh_app(&self, auth: &AuthContext, key: &str) -> Result<(), Error> {
        auth.require(Scope::Admin)?;
        if self.store.delete_ovh_app(&auth.tenant_id, key).await? {
            Ok(())
        } else {
            Err(Error::not_found("ovh_application", key))
        }
    }

    /// Checks a signed request (see the module rules) and authenticates its
    /// consumer key.
    pub async fn ovh_authenticate(&self, req: SignedRequest<'_>) -> Result<AuthContext, OvhRefusal> {
        let key = req
            .application
            .filter(|k| !k.is_empty())
            .ok_or(OvhRefusal::InvalidKey)?;
        let (app, sealed) = self
            .store
            .find_ovh_app(key)
            .await
            .map_err(|e| OvhRefusal::Failed(e.into()))?
            .ok_or(OvhRefusal::InvalidKey)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let ts = req
            .timestamp
            .filter(|t| timely(t, now))
            .ok_or(OvhRefusal::QueryTimeOut)?;
        let consumer = req.consumer.ok_or(OvhRefusal::InvalidCredential)?;
        let secret = self
            .secrets
            .open_sealed(&sealed, crate::secrets::SealedFor::OvhApplication(key))
            .map_err(OvhRefusal::Failed)?;
        let secret = String::from_utf8(secret).map_err(|e| OvhRefusal::Failed(Error::internal(e)))?;
        let want = signature(&secret, consumer, req.method, req.url, req.body, ts);
        if !req.signature.is_some_and(|s| same(s.trim(), &want)) {
            return Err(OvhRefusal::InvalidSignature);
        }
        let auth = match self.authenticate(Some(consumer)).await {
            Ok(a) => a,
            Err(Error::Unauthenticated(_)) => return Err(OvhRefusal::InvalidCredential),
            Err(e) => return Err(OvhRefusal::Failed(e)),
        };
        if auth.tenant_id != app.tenant_id {
            return Err(OvhRefusal::InvalidCredential);
        }
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_ovhs() {
        // Computed independently: printf '%s' 'AS+CK+GET+https://eu.api.ovh.com/1.0/me++1366560945' | sha1sum
        let sig = signature("AS", "CK", "GET", "https://eu.api.ovh.com/1.0/me", b"", "1366560945");
        assert_eq!(sig, "$1$302a5fe8c63712cdc1af50a6ff18f5b370d7b4c1");
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        assert!(timely("1000", 1000 + TIME_WINDOW_SECS));
        assert!(timely(" 1000 ", 1000 - TIME_WINDOW_SECS));
        assert!(!timely("1000", 1001 + TIME_WINDOW_SECS));
        assert!(!timely("soon", 1000));
    }

    #[test]
    fn comparison_needs_equal_strings() {
        assert!(same("$1$ab", "$1$ab"));
        assert!(!same("$1$ab", "$1$ac"));
        assert!(!same("$1$ab", "$1$abc"));
    }
}
