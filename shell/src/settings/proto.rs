//! The parser policy ([`ProtoConfig`]) the settings describe: limits, leniencies,
//! `header_map`, trust and the PROXY protocol. Plain Rust over validated [`Settings`], so
//! the server ([`super::ServerConfig::proto`]), the test server and the conformance
//! runner (which validates a case's settings through this crate's table) use the same
//! translation.
//!
//! Every choice setting is matched against the values its validator produces; anything
//! else is an error, never a silent default. Validation makes that error unreachable from
//! the command line, the config file and `GUNICORN_CMD_ARGS`; the match keeps it so if the
//! validator and this table ever drift apart.

use ferrocorn_core::config::{ProxyMode, UnderscoreHeaders};
use ferrocorn_core::{AllowList, Limits, ProtoConfig};

use super::resolve::Settings;
use super::value::Value;

/// The settings [`proto_config`] reads: every one that changes how the core reads a
/// connection.
pub const PROTO_SETTINGS: [&str; 14] = [
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
    "permit_obsolete_folding",
    "strip_header_spaces",
    "permit_unconventional_http_method",
    "permit_unconventional_http_version",
    "casefold_http_method",
    "header_map",
    "forwarder_headers",
    "forwarded_allow_ips",
    "secure_scheme_headers",
    "proxy_protocol",
    "proxy_allow_ips",
];

/// The parser policy the settings describe; an error names a setting whose value the
/// translation does not know. The one translation: the WSGI workers, the Rust test
/// bodies and the conformance runner all take their [`ProtoConfig`] from here.
pub fn proto_config(settings: &Settings) -> Result<ProtoConfig, String> {
    let list = |name: &str| -> Vec<String> {
        match settings.get(name) {
            Value::Str(s) => {
                s.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
            }
            v => v.as_str_list().into_iter().map(str::to_owned).collect(),
        }
    };
    let allow = |name: &str| -> Result<AllowList, String> {
        let entries = list(name);
        AllowList::from_entries(entries.iter().map(String::as_str))
            .map_err(|e| format!("{name}: invalid entry {:?}", e.entry))
    };
    let secure_scheme_headers = match settings.get("secure_scheme_headers") {
        Value::Dict(pairs) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_ascii_uppercase(), v.as_str()?.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    // The core's policy types are `#[non_exhaustive]`: start from their defaults and set
    // every field a setting decides.
    let mut p = ProtoConfig::default();
    p.limits = Limits::from_gunicorn(
        settings.int("limit_request_line"),
        settings.int("limit_request_fields"),
        settings.int("limit_request_field_size"),
    );
    p.parser.permit_obsolete_folding = settings.bool("permit_obsolete_folding");
    p.parser.strip_header_spaces = settings.bool("strip_header_spaces");
    p.parser.permit_unconventional_method = settings.bool("permit_unconventional_http_method");
    p.parser.permit_unconventional_version = settings.bool("permit_unconventional_http_version");
    p.parser.casefold_method = settings.bool("casefold_http_method");
    p.headers.underscore = underscore_headers(settings.get("header_map"))?;
    p.headers.forwarder_headers = list("forwarder_headers");
    p.trust.forwarded_allow = allow("forwarded_allow_ips")?;
    p.trust.secure_scheme_headers = secure_scheme_headers;
    p.proxy.mode = proxy_mode(settings.get("proxy_protocol"))?;
    p.proxy.allow = allow("proxy_allow_ips")?;
    Ok(p)
}

/// `header_map` as its validator leaves it: `drop`, `refuse`, `dangerous`, or `None` (a
/// config file's `header_map = None`), which gunicorn's parser treats as `refuse` (its
/// "fail-safe fallthrough"). Any other value is an error.
pub fn underscore_headers(v: &Value) -> Result<UnderscoreHeaders, String> {
    match v {
        Value::Str(s) => match s.as_str() {
            "drop" => Ok(UnderscoreHeaders::Drop),
            "refuse" => Ok(UnderscoreHeaders::Refuse),
            "dangerous" => Ok(UnderscoreHeaders::Dangerous),
            _ => Err(format!("header_map: unknown value {s:?} (drop, refuse or dangerous)")),
        },
        Value::None => Ok(UnderscoreHeaders::Refuse),
        other => Err(format!(
            "header_map: unknown value {} (drop, refuse or dangerous)",
            other.py_repr()
        )),
    }
}

/// `proxy_protocol` as its validator leaves it: `off`, `v1`, `v2` or `auto`. Any other
/// value is an error.
pub fn proxy_mode(v: &Value) -> Result<ProxyMode, String> {
    match v.as_str() {
        Some("off") => Ok(ProxyMode::Off),
        Some("v1") => Ok(ProxyMode::V1),
        Some("v2") => Ok(ProxyMode::V2),
        Some("auto") => Ok(ProxyMode::Auto),
        _ => Err(format!("proxy_protocol: unknown value {} (off, v1, v2 or auto)", v.py_repr())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Env, Layer, Origin};

    fn with(pairs: &[(&str, Value)]) -> Result<Settings, String> {
        let env = Env::default();
        let mut s = Settings::defaults(&env).map_err(|e| e.to_string())?;
        let layer = Layer {
            origin: Origin::ConfigFile("test.conf.py".to_owned()),
            values: pairs.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect(),
        };
        s.apply(&layer, &env, None).map_err(|e| e.to_string())?;
        Ok(s)
    }

    #[test]
    fn every_header_map_the_validator_accepts_translates() {
        for (raw, want) in [
            (Value::str("drop"), UnderscoreHeaders::Drop),
            (Value::str(" DROP "), UnderscoreHeaders::Drop),
            (Value::str("Refuse"), UnderscoreHeaders::Refuse),
            (Value::str("dangerous"), UnderscoreHeaders::Dangerous),
            (Value::None, UnderscoreHeaders::Refuse),
        ] {
            let s = with(&[("header_map", raw.clone())]).unwrap();
            assert_eq!(proto_config(&s).unwrap().headers.underscore, want, "{raw:?}");
        }
        // The default is gunicorn's `drop`.
        assert_eq!(
            proto_config(&with(&[]).unwrap()).unwrap().headers.underscore,
            UnderscoreHeaders::Drop
        );
        // The validator refuses the rest before the translation sees it.
        assert!(with(&[("header_map", Value::str("keep"))]).is_err());
    }

    #[test]
    fn an_unknown_value_is_an_error_not_a_default() {
        assert_eq!(
            underscore_headers(&Value::str("keep")),
            Err("header_map: unknown value \"keep\" (drop, refuse or dangerous)".to_owned())
        );
        assert!(underscore_headers(&Value::str("DROP")).is_err(), "only the validated spelling");
        assert!(underscore_headers(&Value::Int(1)).is_err());
        assert!(proxy_mode(&Value::str("true")).is_err());
        assert!(proxy_mode(&Value::None).is_err());
        assert!(proxy_mode(&Value::Bool(true)).is_err());
    }

    #[test]
    fn every_proxy_protocol_the_validator_accepts_translates() {
        for (raw, want) in [
            (Value::str("v1"), ProxyMode::V1),
            (Value::str("V2"), ProxyMode::V2),
            (Value::str("true"), ProxyMode::Auto),
            (Value::Bool(true), ProxyMode::Auto),
            (Value::Bool(false), ProxyMode::Off),
            (Value::None, ProxyMode::Off),
            (Value::str("none"), ProxyMode::Off),
        ] {
            let s = with(&[("proxy_protocol", raw.clone())]).unwrap();
            assert_eq!(proto_config(&s).unwrap().proxy.mode, want, "{raw:?}");
        }
    }

    #[test]
    fn parser_leniencies_and_limits_follow_their_settings() {
        let p = proto_config(&with(&[]).unwrap()).unwrap();
        assert_eq!(p.parser, ferrocorn_core::config::ParserPolicy::default());
        let s = with(&[
            ("permit_obsolete_folding", Value::Bool(true)),
            ("strip_header_spaces", Value::Bool(true)),
            ("permit_unconventional_http_method", Value::Bool(true)),
            ("permit_unconventional_http_version", Value::Bool(true)),
            ("casefold_http_method", Value::Bool(true)),
            ("limit_request_line", Value::Int(100)),
            ("limit_request_fields", Value::Int(7)),
            ("limit_request_field_size", Value::Int(300)),
        ])
        .unwrap();
        let p = proto_config(&s).unwrap();
        let q = &p.parser;
        assert!(q.permit_obsolete_folding && q.strip_header_spaces && q.casefold_method);
        assert!(q.permit_unconventional_method && q.permit_unconventional_version);
        assert_eq!(p.limits, Limits::from_gunicorn(100, 7, 300));
    }
}
