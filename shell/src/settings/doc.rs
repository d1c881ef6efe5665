//! Renders `docs/settings.md` from the settings table.
//!
//! The file is generated: edit the table in `defs.rs`, then regenerate with
//! `FERROCORN_BLESS=1 cargo test -p ferrocorn settings_doc`.

use super::cli::PROG;
use super::defs::SETTINGS;
use super::setting::{Action, DefaultSpec, Section, Setting, Support};

/// How a default reads in the docs (independent of the machine generating them).
fn default_doc(s: &Setting) -> String {
    let v = match s.default {
        DefaultSpec::Computed(_, text) => return text.to_owned(),
        DefaultSpec::Hook(q, _) => return format!("`{q}` (does nothing)"),
        other => other.value(&super::Env::default()).map(|v| v.py_repr()).unwrap_or_default(),
    };
    format!("`{v}`")
}

fn flags_doc(s: &Setting) -> String {
    if s.cli.is_empty() {
        return "(config file only)".to_owned();
    }
    let arg = match s.action {
        Action::StoreTrue | Action::StoreConst(_) => String::new(),
        Action::StoreOptional(_) => format!(" [{}]", s.metavar()),
        Action::Store | Action::Append => format!(" {}", s.metavar()),
    };
    let mut out = s.cli.iter().map(|f| format!("`{f}{arg}`")).collect::<Vec<_>>().join(", ");
    match s.action {
        Action::Append => out.push_str(" (repeatable; replaces the list from lower layers)"),
        Action::StoreConst(c) => {
            out.push_str(&format!(" (stores `{}`)", if c { "True" } else { "False" }))
        }
        Action::StoreOptional(c) => out.push_str(&format!(" (without a value: `{c}`)")),
        _ => {}
    }
    out
}

/// The whole of `docs/settings.md`.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str("# Settings\n\n");
    out.push_str("<!-- Generated from shell/src/settings/defs.rs; do not edit. Regenerate with\n");
    out.push_str("     FERROCORN_BLESS=1 cargo test -p ferrocorn settings_doc -->\n\n");
    out.push_str(&format!(
        "Every gunicorn 27 setting is accepted by `{PROG}` with the same name, flags, validation and \
default, so a `gunicorn.conf.py` and a `gunicorn` command line work unchanged. Values come, lowest \
precedence first, from the defaults, the application (`APP_MODULE`), the config file \
(`-c`, else `./gunicorn.conf.py`), the `GUNICORN_CMD_ARGS` environment variable, and the command \
line. `--print-config` shows the resolved values.\n\n"
    ));
    out.push_str(
        "Settings marked **not supported yet** are accepted and validated so gunicorn 27 config \
files load, but ferrocorn refuses to start, and refuses a HUP reload, when one of them is set to a \
value other than its default: a setting that is accepted does what gunicorn does with it, or \
stops the start with an `Error:` line naming it.\n",
    );
    for section in Section::ALL {
        out.push_str(&format!("\n## {}\n", section.title()));
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            out.push_str(&format!("\n### `{}`\n\n", s.name));
            out.push_str(&format!("- Command line: {}\n", flags_doc(s)));
            out.push_str(&format!("- Default: {}\n", default_doc(s)));
            out.push_str(&format!("- Accepts: {}\n", s.validator.describe()));
            if let Some(v) = s.since {
                out.push_str(&format!("- Added in gunicorn {v}\n"));
            }
            match s.support {
                Support::Full => {}
                Support::Unsupported => out.push_str(
                    "- **Not supported yet** by ferrocorn: refused at start and on HUP when set\n",
                ),
                Support::Inert(why) => out.push_str(&format!("- Accepted, no effect: {why}\n")),
                Support::Ferrocorn(what) => {
                    out.push_str(&format!("- Never read by gunicorn; in ferrocorn: {what}\n"));
                }
            }
            out.push('\n');
            out.push_str(s.help.trim_end());
            out.push('\n');
        }
    }
    out
}
