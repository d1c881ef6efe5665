//! gunicorn settings (as a case's `settings` object) onto [`ProtoConfig`].
//!
//! A case's settings go through the server's own settings table: each value is validated
//! as gunicorn's `cfg.set` does (`ferrocorn::settings`), then translated by the one
//! function the server uses ([`ferrocorn::settings::proto::proto_config`]), so a case runs
//! under exactly the policy `ferrocorn` would build from the same settings. Only the
//! settings that translation reads ([`PROTO_SETTINGS`]) are understood; any other key is
//! an error, so a case never runs under a setting that was silently ignored.
//!
//! JSON values are the Python values of a config file: numbers are ints (or floats),
//! strings strings, `true`/`false` bools, `null` None, arrays lists, objects dicts.

use ferrocorn::settings::proto::PROTO_SETTINGS;
use ferrocorn::settings::{Env, Layer, Origin, Settings, Value as SettingValue};
use ferrocorn_core::ProtoConfig;
use serde_json::Value;

/// Builds the config a case runs under.
pub fn proto_config(settings: &serde_json::Map<String, Value>) -> Result<ProtoConfig, String> {
    if let Some(key) = settings.keys().find(|k| !PROTO_SETTINGS.contains(&k.as_str())) {
        return Err(format!("unknown setting {key:?}"));
    }
    let env = Env::default();
    let mut resolved = Settings::defaults(&env).map_err(|e| e.to_string())?;
    let layer = Layer {
        origin: Origin::ConfigFile(String::from("case settings")),
        values: settings.iter().map(|(k, v)| (k.clone(), setting_value(v))).collect(),
    };
    resolved.apply(&layer, &env, None).map_err(|e| e.to_string())?;
    ferrocorn::settings::proto::proto_config(&resolved)
}

/// A JSON value as the Python value a config file would hold.
fn setting_value(value: &Value) -> SettingValue {
    match value {
        Value::Null => SettingValue::None,
        Value::Bool(b) => SettingValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SettingValue::Int(i),
            None => SettingValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SettingValue::Str(s.clone()),
        Value::Array(items) => SettingValue::List(items.iter().map(setting_value).collect()),
        Value::Object(map) => SettingValue::Dict(
            map.iter().map(|(k, v)| (SettingValue::Str(k.clone()), setting_value(v))).collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use ferrocorn_core::Limits;
    use ferrocorn_core::config::{ProxyMode, UnderscoreHeaders};

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
                "forwarded_allow_ips": "*", "proxy_allow_ips": "10.0.0.0/8",
                "forwarder_headers": "script_name", "secure_scheme_headers": {"x-proto": "https"},
                "proxy_protocol": true}"#,
        )
        .unwrap();
        assert_eq!(c.limits, Limits::from_gunicorn(8200, 2, 0));
        assert!(c.parser.permit_obsolete_folding && c.parser.strip_header_spaces);
        assert!(c.parser.permit_unconventional_method && c.parser.casefold_method);
        assert!(c.parser.permit_unconventional_version);
        assert_eq!(c.headers.underscore, UnderscoreHeaders::Refuse);
        // As the server keeps it (the core compares names without case).
        assert_eq!(c.headers.forwarder_headers, vec![String::from("script_name")]);
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
        // gunicorn's `validate_string_to_addr_list` takes a comma-separated string only.
        assert!(config(r#"{"proxy_allow_ips": ["10.0.0.0/8"]}"#).is_err());
        assert!(config(r#"{"limit_request_line": -1}"#).is_err());
    }
}
