//! Setting values as gunicorn sees them: Python objects.
//!
//! gunicorn validates whatever a layer hands it: `str` from the command line, `int` from
//! argparse's `type=int`, `True` from `store_true`, and any Python object from a config
//! file. [`Value`] models the shapes that matter to the validators and to
//! `--print-config`, which renders values with Python's `str()` / `repr()`. Objects that
//! only Python can interpret (hooks, worker classes given as classes) travel as
//! [`PyObj`]: a description plus an opaque handle the Python bridge owns.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// A value of a setting, shaped like the Python object gunicorn would hold.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Python `None`.
    None,
    /// Python `bool`.
    Bool(bool),
    /// Python `int` (ferrocorn keeps 64 bits; larger ints are refused when converted).
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(String),
    /// Python `list`.
    List(Vec<Value>),
    /// Python `tuple`.
    Tuple(Vec<Value>),
    /// Python `dict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// Any other Python object (functions, classes, instances).
    Object(Box<PyObj>),
}

/// What kind of Python object a [`PyObj`] is; the validators branch on it as gunicorn's
/// `inspect.isfunction` / `inspect.isclass` / `callable()` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// A Python function or bound method (`inspect.isfunction` / `ismethod`).
    Function,
    /// A class (`inspect.isclass`).
    Class,
    /// Another callable object (an instance with `__call__`, a builtin, a lambda wrapper).
    Callable,
    /// An object that is not callable.
    Other,
}

/// A Python object described for the settings layer.
///
/// The Python bridge fills `handle` with its own reference (e.g. a `Py<PyAny>`); the
/// settings layer never looks inside it.
#[derive(Clone)]
pub struct PyObj {
    /// What kind of object this is.
    pub kind: ObjKind,
    /// `__qualname__` (used by `--print-config`: `<Qualname()>`).
    pub qualname: String,
    /// `str(obj)`, used in error messages such as `Value is not callable: ...`.
    pub text: String,
    /// Positional arity as gunicorn's `util.get_arity` counts it, when callable.
    pub arity: Option<usize>,
    /// The bridge's own reference to the object; `None` for built-in defaults.
    pub handle: Option<Arc<dyn Any + Send + Sync>>,
}

impl PyObj {
    /// A function described by qualname and arity, without a Python handle (built-in hook
    /// defaults, tests).
    pub fn function(qualname: &str, arity: usize) -> PyObj {
        PyObj {
            kind: ObjKind::Function,
            qualname: qualname.to_owned(),
            text: format!("<function {qualname}>"),
            arity: Some(arity),
            handle: None,
        }
    }

    /// Whether Python's `callable()` is true for this object.
    pub fn is_callable(&self) -> bool {
        self.kind != ObjKind::Other
    }
}

impl fmt::Debug for PyObj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PyObj")
            .field("kind", &self.kind)
            .field("qualname", &self.qualname)
            .field("arity", &self.arity)
            .field("has_handle", &self.handle.is_some())
            .finish()
    }
}

impl PartialEq for PyObj {
    fn eq(&self, other: &PyObj) -> bool {
        match (&self.handle, &other.handle) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => self.kind == other.kind && self.qualname == other.qualname,
            _ => false,
        }
    }
}

impl Value {
    /// Shorthand for `Value::Str`.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A list of strings.
    pub fn str_list<S: AsRef<str>>(items: &[S]) -> Value {
        Value::List(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }

    /// Python's `type(v).__name__`.
    pub fn type_name(&self) -> &str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Object(o) => match o.kind {
                ObjKind::Function => "function",
                ObjKind::Class => "type",
                ObjKind::Callable | ObjKind::Other => "object",
            },
        }
    }

    /// Python truthiness (`if not val:`).
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) | Value::Tuple(v) => !v.is_empty(),
            Value::Dict(d) => !d.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Whether Python's `callable()` is true.
    pub fn is_callable(&self) -> bool {
        matches!(self, Value::Object(o) if o.is_callable())
    }

    /// The string inside `Value::Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer inside `Value::Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean inside `Value::Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The strings of a list of strings (non-strings are skipped).
    pub fn as_str_list(&self) -> Vec<&str> {
        match self {
            Value::List(v) | Value::Tuple(v) => v.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Python's `str(v)`.
    pub fn py_str(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Object(o) => o.text.clone(),
            other => other.py_repr(),
        }
    }

    /// Python's `repr(v)`.
    pub fn py_repr(&self) -> String {
        match self {
            Value::None => "None".to_owned(),
            Value::Bool(true) => "True".to_owned(),
            Value::Bool(false) => "False".to_owned(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => float_repr(*f),
            Value::Str(s) => str_repr(s),
            Value::List(v) => format!("[{}]", join_reprs(v)),
            Value::Tuple(v) if v.len() == 1 => format!("({},)", v[0].py_repr()),
            Value::Tuple(v) => format!("({})", join_reprs(v)),
            Value::Dict(d) => {
                let items: Vec<String> =
                    d.iter().map(|(k, v)| format!("{}: {}", k.py_repr(), v.py_repr())).collect();
                format!("{{{}}}", items.join(", "))
            }
            Value::Object(o) => o.text.clone(),
        }
    }
}

fn join_reprs(v: &[Value]) -> String {
    v.iter().map(Value::py_repr).collect::<Vec<_>>().join(", ")
}

fn float_repr(f: f64) -> String {
    if f.is_nan() {
        "nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".to_owned() } else { "-inf".to_owned() }
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python's `repr()` of a `str`: single quotes unless the text holds a single quote and
/// no double quote; backslash escapes for the quote, backslash and control characters.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reprs_match_python() {
        assert_eq!(Value::str_list(&["a", "b"]).py_str(), "['a', 'b']");
        assert_eq!(Value::List(vec![]).py_str(), "[]");
        assert_eq!(Value::None.py_str(), "None");
        assert_eq!(Value::Bool(false).py_str(), "False");
        assert_eq!(Value::Float(30.0).py_str(), "30.0");
        assert_eq!(Value::Float(0.5).py_str(), "0.5");
        assert_eq!(Value::str("it's").py_repr(), "\"it's\"");
        assert_eq!(Value::str("a'\"").py_repr(), "'a\\'\"'");
        assert_eq!(Value::str("tab\there").py_repr(), "'tab\\there'");
        assert_eq!(Value::Tuple(vec![Value::Int(1)]).py_repr(), "(1,)");
        let d =
            Value::Dict(vec![(Value::str("K"), Value::str("v")), (Value::str("A"), Value::Int(1))]);
        assert_eq!(d.py_str(), "{'K': 'v', 'A': 1}");
        assert_eq!(Value::str("plain").py_str(), "plain");
    }

    #[test]
    fn truthiness() {
        assert!(!Value::str("").is_truthy());
        assert!(!Value::List(vec![]).is_truthy());
        assert!(!Value::Int(0).is_truthy());
        assert!(Value::str("x").is_truthy());
    }
}
