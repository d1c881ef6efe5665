//! gunicorn settings (as a case's `settings` object) onto [`ProtoConfig`].
//!
//! Only settings that change how the core reads a connection are understood; any other
//! key is an error, so a case never runs under a setting that was silently ignored.
//!
//! | setting | field |
//! | --- | --- |
//! | `limit_request_line`, `limit_request_fields`, `limit_request_field_size` | `limits` via [`Limits::from_gunicorn`] (defaults 4094, 100, 8190) |
//! | `permit_obsolete_folding`, `strip_header_spaces`, `permit_unconventional_http_method`, `casefold_http_method`, `permit_unconventional_http_version` | `parser.*` |
//! | `header_map` (`drop` / `refuse` / `dangerous`), `forwarder_headers` | `headers.*` |
//! | `forwarded_allow_ips`, `secure_scheme_headers` | `trust.*` |
//! | `proxy_protocol` (`true` = `auto`, `false` = `off`, or `off`/`v1`/`v2`/`auto`), `proxy_allow_ips` | `proxy.*` |

use ferrocorn_core::config::{ProxyMode, UnderscoreHeaders};
use ferrocorn_core::{AllowList, Limits, ProtoConfig};
use serde_json::Value;

/// Builds the config a case runs under.
pub fn proto_config(settings: &serde_json::Map<String, Value>) -> Result<ProtoConfig, String> {
    let mut config = ProtoConfig::default();
    let (mut line, mut fields, mut field_size) = (4094_i64, 100_i64, 8190_i64);
    for (key, value) in settings {
        let bad = || format!("setting {key}: unexpected value {value}");
        match key.as_str() {
            "limit_request_line" => line = int(value).ok_or_else(bad)?,
            "limit_request_fields" => fields = int(value).ok_or_else(bad)?,
            "limit_request_field_size" => field_size = int(value).ok_or_else(bad)?,
            "permit_obsolete_folding" => {
                config.parser.permit_obsolete_folding = boolean(value).ok_or_else(bad)?
            }
            "strip_header_spaces" => {
                config.parser.strip_header_spaces = boolean(value).ok_or_else(bad)?
            }
            "permit_unconventional_http_method" => {
                config.parser.permit_unconventional_method = boolean(value).ok_or_else(bad)?
            }
            "casefold_http_method" => {
                config.parser.casefold_method = boolean(value).ok_or_else(bad)?
            }
            "permit_unconventional_http_version" => {
                config.parser.permit_unconventional_version = boolean(value).ok_or_else(bad)?
            }
            "header_map" => {
                config.headers.underscore = match value.as_str() {
                    Some("drop") => UnderscoreHeaders::Drop,
                    Some("refuse") => UnderscoreHeaders::Refuse,
                    Some("dangerous") => UnderscoreHeaders::Dangerous,
                    _ => return Err(bad()),
                }
            }
            "forwarder_headers" => {
                config.headers.forwarder_headers = string_list(value)
                    .ok_or_else(bad)?
                    .iter()
                    .map(|h| h.to_ascii_uppercase())
                    .collect()
            }
            "forwarded_allow_ips" => {
                config.trust.forwarded_allow =
                    allow_list(value).map_err(|e| format!("{}: {e}", bad()))?
            }
            "proxy_allow_ips" => {
                config.proxy.allow = allow_list(value).map_err(|e| format!("{}: {e}", bad()))?
            }
            "secure_scheme_headers" => {
                let map = value.as_object().ok_or_else(bad)?;
                config.trust.secure_scheme_headers = map
                    .iter()
                    .map(|(k, v)| {
                        Ok((k.to_ascii_uppercase(), v.as_str().ok_or_else(bad)?.to_string()))
                    })
                    .collect::<Result<_, String>>()?;
            }
            "proxy_protocol" => {
                config.proxy.mode = match value {
                    Value::Bool(true) => ProxyMode::Auto,
                    Value::Bool(false) => ProxyMode::Off,
                    Value::String(s) => match s.as_str() {
                        "off" | "none" => ProxyMode::Off,
                        "v1" => ProxyMode::V1,
                        "v2" => ProxyMode::V2,
                        "auto" => ProxyMode::Auto,
                        _ => return Err(bad()),
                    },
                    _ => return Err(bad()),
                }
            }
            _ => return Err(format!("unknown setting {key:?}")),
        }
    }
    config.limits = Limits::from_gunicorn(line, fields, field_size);
    Ok(config)
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(value: &Value) -> Option<bool> {
    value.as_bool()
}

/// A list setting: a JSON list of strings, or one comma-separated string.
fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(s) => {
            Some(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        }
        Value::Array(items) => {
            items.iter().map(|v| v.as_str().map(|s| s.trim().to_string())).collect()
        }
        _ => None,
    }
}

fn allow_list(value: &Value) -> Result<AllowList, String> {
    let entries = string_list(value).ok_or_else(|| String::from("not a list"))?;
    AllowList::from_entries(entries.iter().map(String::as_str)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<ProtoConfig, String> {
        let v: Value = serde_json::from_str(json).unwrap();
        proto_config(v.as_object().unwrap())
    }

    #[test]
    fn defaults() {
        let c = config("{}").unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.proxy.mode, ProxyMode::Off);
        assert_eq!(c.headers.underscore, UnderscoreHeaders::Drop);
    }

    #[test]
    fn every_understood_setting() {
        let c = config(
            r#"{"limit_request_line": 8200, "limit_request_fields": 2, "limit_request_field_size": 0,
                "permit_obsolete_folding": true, "strip_header_spaces": true,
                "permit_unconventional_http_method": true, "casefold_http_method": true,
                "permit_unconventional_http_version": true, "header_map": "refuse",
                "forwarded_allow_ips": "*", "proxy_allow_ips": ["10.0.0.0/8"],
                "forwarder_headers": "script_name", "secure_scheme_headers": {"x-proto": "https"},
                "proxy_protocol": true}"#,
        )
        .unwrap();
        assert_eq!(c.limits, Limits::from_gunicorn(8200, 2, 0));
        assert!(c.parser.permit_obsolete_folding && c.parser.strip_header_spaces);
        assert!(c.parser.permit_unconventional_method && c.parser.casefold_method);
        assert!(c.parser.permit_unconventional_version);
        assert_eq!(c.headers.underscore, UnderscoreHeaders::Refuse);
        assert_eq!(c.headers.forwarder_headers, vec![String::from("SCRIPT_NAME")]);
        assert!(c.trust.forwarded_allow.is_any());
        assert!(c.proxy.allow.allows_ip("10.1.2.3".parse().unwrap()));
        assert_eq!(
            c.trust.secure_scheme_headers,
            vec![(String::from("X-PROTO"), String::from("https"))]
        );
        assert_eq!(c.proxy.mode, ProxyMode::Auto);
        for (s, mode) in [
            ("off", ProxyMode::Off),
            ("v1", ProxyMode::V1),
            ("v2", ProxyMode::V2),
            ("auto", ProxyMode::Auto),
        ] {
            assert_eq!(
                config(&format!(r#"{{"proxy_protocol": "{s}"}}"#)).unwrap().proxy.mode,
                mode
            );
        }
    }

    #[test]
    fn refuses_unknown_and_bad_values() {
        assert!(config(r#"{"workers": 4}"#).is_err());
        assert!(config(r#"{"header_map": "keep"}"#).is_err());
        assert!(config(r#"{"proxy_protocol": "v3"}"#).is_err());
        assert!(config(r#"{"permit_obsolete_folding": "yes"}"#).is_err());
        assert!(config(r#"{"forwarded_allow_ips": "localhost"}"#).is_err());
    }
}
