//! Small XML helpers: escaping for the fragments we write, and a bounded element tree for
//! the documents we read (CPIX).
//!
//! The tree is built with quick-xml's namespace-resolving reader, so prefixes in the input
//! do not matter — only namespace URIs and local names. Document type declarations are
//! refused outright (CPIX has no use for them, and it shuts the door on entity tricks).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::error::{snippet, Error, Result};

/// Escapes text for element content or a double-quoted attribute value.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Refuses text with control characters (including line breaks) or, when `quoted`, a
/// double quote: values we embed in manifests, playlists and headers must not be able to
/// end their field or line early.
pub(crate) fn check_embeddable(what: &'static str, s: &str, quoted: bool) -> Result<()> {
    if s.chars().any(|c| c.is_control() || (quoted && c == '"')) {
        return Err(Error::UnsafeText { what, input: snippet(s) });
    }
    Ok(())
}

/// Bounds for [`parse_tree`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Maximum input size in bytes.
    pub max_bytes: usize,
    /// Maximum number of elements.
    pub max_elements: usize,
    /// Maximum nesting depth.
    pub max_depth: usize,
}

/// One element: resolved namespace URI, local name, unprefixed attributes, children, text.
#[derive(Debug, Default)]
pub(crate) struct Element {
    /// Namespace URI (empty if none).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes without a namespace prefix (the only kind CPIX defines), in document order.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated, unescaped character data (text and CDATA), trimmed.
    pub text: String,
}

impl Element {
    /// True if this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }

    /// An unprefixed attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Children named `{ns}name`.
    pub fn children_named<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The first child named `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }
}

/// Parses a whole UTF-8 document into its root element, within `limits`.
pub(crate) fn parse_tree(input: &[u8], limits: Limits) -> Result<Element> {
    if input.len() > limits.max_bytes {
        return Err(Error::TooLarge { what: "XML document", got: input.len(), limit: limits.max_bytes });
    }
    let text = std::str::from_utf8(input).map_err(|e| xml_err(format!("not UTF-8 ({e})")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let cfg = reader.config_mut();
    cfg.trim_text(true);
    cfg.expand_empty_elements = true;
    cfg.check_end_names = true;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let pos = reader.buffer_position();
        let (ns, ev) = reader.read_resolved_event().map_err(|e| xml_err(format!("at byte {pos}: {e}")))?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(xml_err("content after the root element".into()));
                }
                count += 1;
                if count > limits.max_elements {
                    return Err(Error::TooLarge { what: "XML elements", got: count, limit: limits.max_elements });
                }
                if stack.len() >= limits.max_depth {
                    return Err(Error::TooLarge {
                        what: "XML nesting depth",
                        got: stack.len() + 1,
                        limit: limits.max_depth,
                    });
                }
                let ns = match ns {
                    ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(xml_err(format!("undeclared prefix {:?}", String::from_utf8_lossy(&p))));
                    }
                };
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| xml_err(format!("bad attribute in <{name}>: {err}")))?;
                    let key = a.key.as_ref();
                    // Namespace declarations and prefixed attributes (xml:lang, xsi:...) are
                    // not CPIX data.
                    if key == b"xmlns" || key.contains(&b':') {
                        continue;
                    }
                    let value =
                        a.unescape_value().map_err(|err| xml_err(format!("bad attribute value in <{name}>: {err}")))?;
                    attrs.push((String::from_utf8_lossy(key).into_owned(), value.into_owned()));
                }
                stack.push(Element { ns, name, attrs, ..Element::default() });
            }
            Event::End(_) => {
                // quick-xml checks end names, so the stack cannot be empty here; guard anyway.
                let Some(done) = stack.pop() else {
                    return Err(xml_err("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| xml_err(format!("bad text: {e}")))?;
                push_text(&mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = std::str::from_utf8(&c).map_err(|_| xml_err("CDATA not UTF-8".into()))?;
                push_text(&mut stack, s)?;
            }
            Event::DocType(_) => return Err(xml_err("document type declarations are not allowed".into())),
            Event::Empty(_) => return Err(xml_err("unexpected empty element".into())),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(xml_err("unexpected end of document".into()));
    }
    root.ok_or_else(|| xml_err("no root element".into()))
}

fn push_text(stack: &mut [Element], s: &str) -> Result<()> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(s.trim());
            Ok(())
        }
        None if s.trim().is_empty() => Ok(()),
        None => Err(xml_err(format!("text outside the root element: {:?}", snippet(s)))),
    }
}

fn xml_err(msg: String) -> Error {
    Error::Cpix(format!("malformed XML: {msg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_bytes: 4096, max_elements: 16, max_depth: 4 };

    #[test]
    fn escapes() {
        assert_eq!(escape(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d&apos;");
        assert!(check_embeddable("x", "https://a/b?c=d&e", true).is_ok());
        assert!(check_embeddable("x", "a\"b", true).is_err());
        assert!(check_embeddable("x", "a\"b", false).is_ok());
        assert!(check_embeddable("x", "a\nb", false).is_err());
    }

    #[test]
    fn resolves_namespaces_not_prefixes() {
        let doc = br#"<?xml version="1.0"?><r xmlns="urn:a" xmlns:q="urn:b" k="1" q:z="2"><q:c>x &amp; <![CDATA[y]]></q:c><c/></r>"#;
        let t = parse_tree(doc, L).unwrap();
        assert!(t.is("urn:a", "r"));
        assert_eq!(t.attrs, vec![("k".to_string(), "1".to_string())]);
        assert_eq!(t.child("urn:b", "c").unwrap().text, "x &y");
        assert!(t.child("urn:a", "c").is_some());
    }

    #[test]
    fn refuses_hostile_shapes() {
        for bad in [
            &br#"<!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>"#[..],
            b"<r><a></r>",
            b"<r></r><r></r>",
            b"<r>&unknown;</r>",
            b"<p:r/>",
            b"<a><b><c><d><e/></d></c></b></a>",
            b"",
            b"\xff\xfe<r/>",
        ] {
            assert!(parse_tree(bad, L).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let many = format!("<r>{}</r>", "<a/>".repeat(20));
        assert!(matches!(parse_tree(many.as_bytes(), L), Err(Error::TooLarge { .. })));
        let big = format!("<r>{}</r>", "x".repeat(5000));
        assert!(matches!(parse_tree(big.as_bytes(), L), Err(Error::TooLarge { .. })));
    }
}
