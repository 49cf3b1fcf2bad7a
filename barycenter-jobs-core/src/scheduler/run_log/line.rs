//! One line of a run's log: an event's message and fields as text, cut to a bound.

use std::fmt::{self, Write as _};

use tracing::Event;
use tracing::field::{Field, Visit};

/// `s`, cut to at most `max` bytes at a character boundary, with a mark when cut.
pub(super) fn cut(mut s: String, max: usize) -> String {
    const MARK: &str = " [cut]";
    if s.len() <= max {
        return s;
    }
    let mut at = max - MARK.len();
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    s.truncate(at);
    s.push_str(MARK);
    s
}

/// The event's `message`, then ` key=value` for each other field (values as `Debug`, as
/// `tracing-subscriber`'s formatter writes them).
pub(super) fn format_event(event: &Event<'_>) -> String {
    // One allocation in the usual case: the message first (`tracing`'s macros record it
    // first), the other fields after it in the same string.
    let mut visitor = Fields {
        message: String::with_capacity(128),
        rest: String::new(),
    };
    event.record(&mut visitor);
    let mut out = visitor.message;
    if out.is_empty() {
        out = visitor.rest.trim_start().to_owned();
    } else {
        out.push_str(&visitor.rest);
    }
    out
}

struct Fields {
    message: String,
    /// Fields recorded before the message (rare): kept apart so the message leads.
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        // A plain word as it is, unquoted: escaping every value (`Debug`) would cost each
        // kept line more than the rest of its formatting. Anything a reader could misparse
        // (spaces, `=`, quotes, control characters, nothing at all) is quoted as `Debug` does.
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'=' && b != b'"' && b != b'\\');
        match field.name() {
            "message" => self.message.push_str(value),
            name if name.starts_with("log.") => {}
            _ if !plain => self.record_debug(field, &value),
            name => {
                let out = if self.message.is_empty() {
                    &mut self.rest
                } else {
                    &mut self.message
                };
                out.push(' ');
                out.push_str(name);
                out.push('=');
                out.push_str(value);
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` records bridged by `tracing-log` carry their origin as fields: noise here.
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name if name.starts_with("log.") => {}
            // After the message, straight into its string; before it, set apart.
            name if !self.message.is_empty() => {
                let _ = write!(self.message, " {name}={value:?}");
            }
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}
