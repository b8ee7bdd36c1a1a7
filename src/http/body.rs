//! Reading request bodies ourselves: a size limit enforced before and while reading, the
//! content type checked, and JSON errors reported with their position.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

use super::ApiError;

/// Largest create body (`spec/jpp.md` §2).
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Largest body of a request that needs none (cancel): room for `{}` or a short note.
pub const MAX_EMPTY_BODY: usize = 1024;

/// The body's media type without parameters, lower-cased; `None` without the header.
pub fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Reads a JSON body of at most `limit` bytes, sent as `application/json` (or `…+json`).
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    match media_type(req).as_deref() {
        Some("application/json") => {}
        Some(t) if t.starts_with("application/") && t.ends_with("+json") => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("Content-Type {other:?} is not accepted here: send the body as JSON with `Content-Type: application/json`."),
            ))
        }
        None => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request has no Content-Type: send the body as JSON with `Content-Type: application/json`.",
            ))
        }
    }
    let bytes = read_limited(req, payload, limit).await?;
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("The body is not valid JSON: {e}."))
    })?;
    if let Some(path) = duplicate_key(&bytes) {
        return Err(ApiError::bad_request(
            "duplicate_field",
            format!("{path} appears more than once; send each field once."),
        )
        .with_field(path, "appears more than once"));
    }
    Ok(value)
}

/// The path (`outputs[1].amount`) of the first key that appears twice in one object of a JSON
/// document known to be valid. serde_json keeps the last of two and says nothing, so a body
/// whose two readers disagree on a field (a proxy, a log, this server) would be accepted.
pub fn duplicate_key(json: &[u8]) -> Option<String> {
    let found = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = serde::de::DeserializeSeed::deserialize(
        Walk {
            path: String::new(),
            found: &found,
        },
        &mut de,
    );
    found.into_inner()
}

/// Walks a JSON value, stopping at the first repeated key (its path goes into `found`).
struct Walk<'a> {
    path: String,
    found: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                *self.found.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value_seed(Walk {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Walk {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Collects the body, refusing it with 413 as soon as it is known to exceed `limit`.
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = declared_length(req);
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    collect(payload, limit, declared.unwrap_or(1024)).await
}

/// The body's length as the request announces it.
pub fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

/// Reads a body stream whole, refusing it with 413 once it passes `limit` bytes.
pub async fn collect<S>(
    mut stream: S,
    limit: usize,
    expected: usize,
) -> Result<web::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    let mut body = web::BytesMut::with_capacity(expected.min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request(
                "body_unreadable",
                format!("The body could not be read: {e}."),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("The body is larger than the {limit} bytes this endpoint accepts."),
    )
}

#[cfg(test)]
mod tests {
    use super::duplicate_key;

    #[test]
    fn repeated_keys_are_found_with_their_path() {
        assert_eq!(
            duplicate_key(br#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#),
            None
        );
        assert_eq!(
            duplicate_key(br#"{"memo": "x", "memo": "y"}"#).as_deref(),
            Some("memo")
        );
        assert_eq!(
            duplicate_key(br#"{"outputs": [{"amount": 1}, {"amount": 1, "amount": 9}]}"#)
                .as_deref(),
            Some("outputs[1].amount")
        );
        // The same key in two objects is no repeat.
        assert_eq!(duplicate_key(br#"[{"a": 1}, {"a": 1}]"#), None);
    }
}
