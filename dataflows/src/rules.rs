//! Segment rules: boolean conditions on journey fields (`events >= 3 and channels contains
//! "email"`), written in the pipeline config and evaluated on each journey row inside the
//! segments dataflow.
//!
//! Grammar (keywords are case-insensitive, field names are not):
//!
//! ```text
//! rule      := or
//! or        := and (("or" | "||") and)*
//! and       := unary (("and" | "&&") unary)*
//! unary     := ("not" | "!") unary | "(" or ")" | condition
//! condition := number_field ("==" | "!=" | "<" | "<=" | ">" | ">=") number
//!            | string_field ("==" | "!=") string
//!            | string_field "in" "[" (string ("," string)* ","?)? "]"
//!            | bool_field (("==" | "!=") ("true" | "false"))?
//!            | list_field "contains" string
//! ```
//!
//! Numbers are integers or decimals (`-3`, `2.5`, `1e3`); strings are double- or single-quoted
//! with `\"`, `\'`, `\\`, `\n` and `\t` escapes.
//!
//! A parsed [`Rule`] holds strings; [`Rule::bind`] interns them in the [`Symbols`] table that
//! interns the event data, giving a [`BoundRule`] that compares ids only.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::event::micros_to_value;
use crate::row::JourneyRow;
use crate::symbols::{Sym, Symbols};

/// A parsed segment rule: a boolean expression over the fields of a [`JourneyRow`].
///
/// A rule serializes as its source text and deserializes by parsing it, so a config can hold
/// rules as plain strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rule {
    text: String,
    expr: Expr<String>,
}

impl Rule {
    /// Parses a rule; errors say where (character offset) and what was expected.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let tokens = lex(text)?;
        let mut parser = Parser { tokens, pos: 0 };
        let expr = parser.or()?;
        let end = parser.peek();
        if end.tok != Tok::End {
            return Err(RuleError::new(
                format!("expected `and`, `or` or the end of the rule, found {}", end.tok.describe()),
                end.offset,
            ));
        }
        Ok(Rule { text: text.to_string(), expr })
    }

    /// Interns the rule's string literals (and channel names of `channel_events.X` fields) in
    /// `symbols`, so that evaluation compares ids only.
    ///
    /// `symbols` must be the table that interns the rows' strings: then string equality is id
    /// equality. A literal the data never holds gets an id no row carries, so it matches nothing.
    pub fn bind(&self, symbols: &Symbols) -> BoundRule {
        BoundRule { expr: self.expr.bind(symbols) }
    }
}

/// A rule ready to evaluate on journey rows: a [`Rule`] whose strings are interned by
/// [`Rule::bind`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundRule {
    expr: Expr<Sym>,
}

impl BoundRule {
    /// Whether a journey row satisfies the rule.
    pub fn matches(&self, row: &JourneyRow) -> bool {
        self.expr.eval(row)
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        Rule::parse(text)
    }
}

impl TryFrom<String> for Rule {
    type Error = RuleError;

    fn try_from(text: String) -> Result<Rule, RuleError> {
        Rule::parse(&text)
    }
}

impl From<Rule> for String {
    fn from(rule: Rule) -> String {
        rule.text
    }
}

impl fmt::Display for Rule {
    /// Writes the rule's source text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a rule did not parse, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// What was wrong or expected.
    pub message: String,
    /// Character offset (not byte offset) in the rule text where the problem is.
    pub offset: usize,
}

impl RuleError {
    fn new(message: impl Into<String>, offset: usize) -> Self {
        RuleError { message: message.into(), offset }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

impl std::error::Error for RuleError {}

/// The rule's expression tree, with its strings as `S`: [`String`] when parsed, [`Sym`] when bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Expr<S> {
    Or(Vec<Expr<S>>),
    And(Vec<Expr<S>>),
    Not(Box<Expr<S>>),
    Num { field: NumField<S>, op: CmpOp, value: Number },
    Converted(bool),
    Str { field: StrField, equal: bool, value: S },
    In { field: StrField, values: Vec<S> },
    Contains { field: ListField, value: S },
}

impl Expr<String> {
    fn bind(&self, symbols: &Symbols) -> Expr<Sym> {
        let bind_all = |items: &[Expr<String>]| items.iter().map(|e| e.bind(symbols)).collect();
        match self {
            Expr::Or(items) => Expr::Or(bind_all(items)),
            Expr::And(items) => Expr::And(bind_all(items)),
            Expr::Not(inner) => Expr::Not(Box::new(inner.bind(symbols))),
            Expr::Num { field, op, value } => Expr::Num { field: field.bind(symbols), op: *op, value: *value },
            Expr::Converted(value) => Expr::Converted(*value),
            Expr::Str { field, equal, value } => {
                Expr::Str { field: *field, equal: *equal, value: symbols.intern(value) }
            }
            Expr::In { field, values } => {
                Expr::In { field: *field, values: values.iter().map(|v| symbols.intern(v)).collect() }
            }
            Expr::Contains { field, value } => Expr::Contains { field: *field, value: symbols.intern(value) },
        }
    }
}

impl Expr<Sym> {
    fn eval(&self, row: &JourneyRow) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|e| e.eval(row)),
            Expr::And(items) => items.iter().all(|e| e.eval(row)),
            Expr::Not(inner) => !inner.eval(row),
            Expr::Num { field, op, value } => op.holds(field.get(row).map(|v| v.compare(value))),
            Expr::Converted(value) => row.converted() == *value,
            Expr::Str { field, equal, value } => match field.get(row) {
                Some(s) => (s == *value) == *equal,
                None => !*equal,
            },
            Expr::In { field, values } => field.get(row).is_some_and(|s| values.contains(&s)),
            Expr::Contains { field: ListField::Channels, value } => row.channels().any(|c| c == *value),
            Expr::Contains { field: ListField::Path, value } => row.path.contains(value),
        }
    }
}

/// A numeric literal or field value: integers compare exactly, anything with a float as floats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }

    fn compare(self, other: &Number) -> Ordering {
        match (self, *other) {
            (Number::Int(a), Number::Int(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// Whether `field op literal` holds given `field.cmp(literal)`; a missing field (`None`)
    /// satisfies only `!=`.
    fn holds(self, ordering: Option<Ordering>) -> bool {
        let Some(ordering) = ordering else {
            return self == CmpOp::Ne;
        };
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Ne => ordering != Ordering::Equal,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Le => ordering != Ordering::Greater,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Ge => ordering != Ordering::Less,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A numeric field; `S` names the channel of `channel_events.<channel>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum NumField<S> {
    Events,
    Sessions,
    SessionEvents,
    Conversions,
    Value,
    SessionDurationMs,
    FirstTime,
    LastTime,
    SessionStart,
    LastConversionTime,
    ChannelEvents(S),
}

impl NumField<String> {
    fn bind(&self, symbols: &Symbols) -> NumField<Sym> {
        match self {
            NumField::Events => NumField::Events,
            NumField::Sessions => NumField::Sessions,
            NumField::SessionEvents => NumField::SessionEvents,
            NumField::Conversions => NumField::Conversions,
            NumField::Value => NumField::Value,
            NumField::SessionDurationMs => NumField::SessionDurationMs,
            NumField::FirstTime => NumField::FirstTime,
            NumField::LastTime => NumField::LastTime,
            NumField::SessionStart => NumField::SessionStart,
            NumField::LastConversionTime => NumField::LastConversionTime,
            NumField::ChannelEvents(channel) => NumField::ChannelEvents(symbols.intern(channel)),
        }
    }
}

impl NumField<Sym> {
    fn get(&self, row: &JourneyRow) -> Option<Number> {
        let int = |i: i64| Some(Number::Int(i.into()));
        let count = |n: u64| Some(Number::Int(n.into()));
        match self {
            NumField::Events => count(row.events),
            NumField::Sessions => count(row.sessions),
            NumField::SessionEvents => count(row.session_events),
            NumField::Conversions => count(row.conversions),
            NumField::Value => Some(Number::Float(micros_to_value(row.value))),
            NumField::SessionDurationMs => int(row.session_duration()),
            NumField::FirstTime => int(row.first_time),
            NumField::LastTime => int(row.last_time),
            NumField::SessionStart => int(row.session_start),
            NumField::LastConversionTime => row.last_conversion_time.and_then(int),
            NumField::ChannelEvents(channel) => {
                count(row.channel_events.iter().find(|(c, _)| c == channel).map_or(0, |(_, n)| *n))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum StrField {
    Customer,
    JourneyKey,
    LastContactPoint,
}

impl StrField {
    fn get(self, row: &JourneyRow) -> Option<Sym> {
        match self {
            StrField::Customer => Some(row.journey.customer),
            StrField::JourneyKey => row.journey.key,
            StrField::LastContactPoint => row.last_contact_point(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ListField {
    Channels,
    Path,
}

/// A field name resolved to its type.
enum Field {
    Num(NumField<String>),
    Converted,
    Str(StrField),
    List(ListField),
}

const CHANNEL_EVENTS_PREFIX: &str = "channel_events.";

const KNOWN_FIELDS: &str = "events, sessions, session_events, conversions, value, session_duration_ms, \
     first_time, last_time, session_start, last_conversion_time, channel_events.<channel>, \
     converted, customer, journey_key, last_contact_point, channels, path";

impl Field {
    fn lookup(name: &str) -> Option<Field> {
        Some(match name {
            "events" => Field::Num(NumField::Events),
            "sessions" => Field::Num(NumField::Sessions),
            "session_events" => Field::Num(NumField::SessionEvents),
            "conversions" => Field::Num(NumField::Conversions),
            "value" => Field::Num(NumField::Value),
            "session_duration_ms" => Field::Num(NumField::SessionDurationMs),
            "first_time" => Field::Num(NumField::FirstTime),
            "last_time" => Field::Num(NumField::LastTime),
            "session_start" => Field::Num(NumField::SessionStart),
            "last_conversion_time" => Field::Num(NumField::LastConversionTime),
            "converted" => Field::Converted,
            "customer" => Field::Str(StrField::Customer),
            "journey_key" => Field::Str(StrField::JourneyKey),
            "last_contact_point" => Field::Str(StrField::LastContactPoint),
            "channels" => Field::List(ListField::Channels),
            "path" => Field::List(ListField::Path),
            _ => {
                let channel = name.strip_prefix(CHANNEL_EVENTS_PREFIX).filter(|c| !c.is_empty())?;
                Field::Num(NumField::ChannelEvents(channel.to_string()))
            }
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Field::Num(_) => "a number",
            Field::Converted => "a boolean",
            Field::Str(_) => "a string",
            Field::List(_) => "a list",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Number),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Cmp(CmpOp),
    And,
    Or,
    Not,
    Contains,
    In,
    Bool(bool),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(Number::Int(i)) => format!("number {i}"),
            Tok::Num(Number::Float(f)) => format!("number {f}"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Cmp(op) => format!("`{}`", op.symbol()),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::Contains => "`contains`".into(),
            Tok::In => "`in`".into(),
            Tok::Bool(b) => format!("`{b}`"),
            Tok::End => "the end of the rule".into(),
        }
    }

    /// The type of a literal token, for type-mismatch messages.
    fn literal_kind(&self) -> Option<&'static str> {
        match self {
            Tok::Str(_) => Some("a string"),
            Tok::Num(_) => Some("a number"),
            Tok::Bool(_) => Some("a boolean"),
            _ => None,
        }
    }
}

struct Token {
    tok: Tok,
    offset: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, RuleError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        let (tok, len) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBracket, 1),
            ']' => (Tok::RBracket, 1),
            ',' => (Tok::Comma, 1),
            '=' if next == Some('=') => (Tok::Cmp(CmpOp::Eq), 2),
            '=' => return Err(RuleError::new("expected `==`, found a single `=`", start)),
            '!' if next == Some('=') => (Tok::Cmp(CmpOp::Ne), 2),
            '!' => (Tok::Not, 1),
            '<' if next == Some('=') => (Tok::Cmp(CmpOp::Le), 2),
            '<' => (Tok::Cmp(CmpOp::Lt), 1),
            '>' if next == Some('=') => (Tok::Cmp(CmpOp::Ge), 2),
            '>' => (Tok::Cmp(CmpOp::Gt), 1),
            '&' if next == Some('&') => (Tok::And, 2),
            '&' => return Err(RuleError::new("expected `&&`, found a single `&`", start)),
            '|' if next == Some('|') => (Tok::Or, 2),
            '|' => return Err(RuleError::new("expected `||`, found a single `|`", start)),
            '"' | '\'' => lex_string(&chars, start)?,
            c if c.is_ascii_digit() || c == '-' || c == '.' => lex_number(&chars, start)?,
            c if c.is_alphabetic() || c == '_' => {
                let mut end = start + 1;
                while end < chars.len() && is_ident_char(chars[end]) {
                    end += 1;
                }
                let word: String = chars[start..end].iter().collect();
                let tok = match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "contains" => Tok::Contains,
                    "in" => Tok::In,
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    _ => Tok::Ident(word),
                };
                (tok, end - start)
            }
            c => return Err(RuleError::new(format!("unexpected character {c:?}"), start)),
        };
        tokens.push(Token { tok, offset: start });
        i += len;
    }
    tokens.push(Token { tok: Tok::End, offset: chars.len() });
    Ok(tokens)
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '-'
}

/// Lexes a quoted string starting at `start`; returns the token and its length in characters.
fn lex_string(chars: &[char], start: usize) -> Result<(Tok, usize), RuleError> {
    let quote = chars[start];
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(RuleError::new("unterminated string", start)),
            Some(&c) if c == quote => return Ok((Tok::Str(value), i + 1 - start)),
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\'') => '\'',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    None => return Err(RuleError::new("unterminated string", start)),
                    Some(c) => {
                        return Err(RuleError::new(
                            format!("unknown escape `\\{c}` (expected \\\", \\', \\\\, \\n or \\t)"),
                            i,
                        ));
                    }
                };
                value.push(escaped);
                i += 2;
            }
            Some(&c) => {
                value.push(c);
                i += 1;
            }
        }
    }
}

/// Lexes a number starting at `start`; returns the token and its length in characters.
fn lex_number(chars: &[char], start: usize) -> Result<(Tok, usize), RuleError> {
    let mut end = start;
    if chars[end] == '-' {
        end += 1;
    }
    let mut digits = 0;
    let mut float = false;
    while let Some(&c) = chars.get(end) {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c == '.' && !float {
            float = true;
        } else {
            break;
        }
        end += 1;
    }
    if digits == 0 {
        return Err(RuleError::new("expected a number", start));
    }
    if let Some('e' | 'E') = chars.get(end) {
        let mut exp = end + 1;
        if let Some('+' | '-') = chars.get(exp) {
            exp += 1;
        }
        let exp_digits = chars[exp..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return Err(RuleError::new("expected digits in the number's exponent", start));
        }
        end = exp + exp_digits;
        float = true;
    }
    if chars.get(end).is_some_and(|&c| is_ident_char(c)) {
        return Err(RuleError::new("expected a number", start));
    }
    let text: String = chars[start..end].iter().collect();
    let number = if float { None } else { text.parse::<i128>().ok().map(Number::Int) };
    let number = match number {
        Some(n) => n,
        None => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Number::Float(f),
            _ => {
                return Err(RuleError::new(format!("number {text} is out of range"), start));
            }
        },
    };
    Ok((Tok::Num(number), end - start))
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    /// Moves past the current token (never past the end token).
    fn advance(&mut self) {
        if self.tokens[self.pos].tok != Tok::End {
            self.pos += 1;
        }
    }

    fn error(&self, expected: &str) -> RuleError {
        let token = self.peek();
        RuleError::new(format!("expected {expected}, found {}", token.tok.describe()), token.offset)
    }

    fn or(&mut self) -> Result<Expr<String>, RuleError> {
        let mut items = vec![self.and()?];
        while self.peek().tok == Tok::Or {
            self.advance();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::Or(items) })
    }

    fn and(&mut self) -> Result<Expr<String>, RuleError> {
        let mut items = vec![self.unary()?];
        while self.peek().tok == Tok::And {
            self.advance();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.remove(0) } else { Expr::And(items) })
    }

    fn unary(&mut self) -> Result<Expr<String>, RuleError> {
        let token = self.peek();
        let offset = token.offset;
        match token.tok.clone() {
            Tok::Not => {
                self.advance();
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::LParen => {
                self.advance();
                let inner = self.or()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.error(&format!("`)` to close the `(` at offset {offset}")));
                }
                self.advance();
                Ok(inner)
            }
            Tok::Ident(name) => {
                self.advance();
                self.condition(&name, offset)
            }
            _ => Err(self.error("a condition (a field name, `not` or `(`)")),
        }
    }

    fn condition(&mut self, name: &str, offset: usize) -> Result<Expr<String>, RuleError> {
        let Some(field) = Field::lookup(name) else {
            return Err(RuleError::new(format!("unknown field `{name}`; known fields: {KNOWN_FIELDS}"), offset));
        };
        let op_token = self.peek();
        let op_offset = op_token.offset;
        match (op_token.tok.clone(), field) {
            (Tok::Cmp(op), field) => {
                self.advance();
                self.comparison(name, field, op, op_offset)
            }
            (Tok::Contains, Field::List(field)) => {
                self.advance();
                match self.peek().tok.clone() {
                    Tok::Str(value) => {
                        self.advance();
                        Ok(Expr::Contains { field, value })
                    }
                    _ => Err(self.error("a string after `contains`")),
                }
            }
            (Tok::In, Field::Str(field)) => {
                self.advance();
                Ok(Expr::In { field, values: self.string_list()? })
            }
            (Tok::Contains, field) => Err(RuleError::new(
                format!("{name} is {}; `contains` applies to the lists channels and path", field.kind()),
                op_offset,
            )),
            (Tok::In, field) => Err(RuleError::new(
                format!(
                    "{name} is {}; `in` applies to the strings customer, journey_key and last_contact_point",
                    field.kind()
                ),
                op_offset,
            )),
            (_, Field::Converted) => Ok(Expr::Converted(true)),
            (_, Field::Num(_)) => {
                Err(self.error(&format!("a comparison (==, !=, <, <=, >, >=) after the number {name}")))
            }
            (_, Field::Str(_)) => Err(self.error(&format!("==, != or `in` after the string {name}"))),
            (_, Field::List(_)) => Err(self.error(&format!("`contains` after the list {name}"))),
        }
    }

    fn comparison(&mut self, name: &str, field: Field, op: CmpOp, op_offset: usize) -> Result<Expr<String>, RuleError> {
        let equality = matches!(op, CmpOp::Eq | CmpOp::Ne);
        match &field {
            Field::Converted if !equality => {
                return Err(RuleError::new(format!("{name} is a boolean; only == and != apply"), op_offset));
            }
            Field::Str(_) if !equality => {
                return Err(RuleError::new(format!("{name} is a string; only ==, != and `in` apply"), op_offset));
            }
            Field::List(_) => {
                return Err(RuleError::new(format!("{name} is a list; use `{name} contains \"…\"`"), op_offset));
            }
            _ => {}
        }
        let literal = self.peek();
        let literal_offset = literal.offset;
        let Some(literal_kind) = literal.tok.literal_kind() else {
            return Err(self.error(&format!("a value (number, string, true or false) after `{}`", op.symbol())));
        };
        let expr = match (field, literal.tok.clone()) {
            (Field::Num(field), Tok::Num(value)) => Expr::Num { field, op, value },
            (Field::Converted, Tok::Bool(value)) => Expr::Converted(value == (op == CmpOp::Eq)),
            (Field::Str(field), Tok::Str(value)) => Expr::Str { field, equal: op == CmpOp::Eq, value },
            (field, _) => {
                return Err(RuleError::new(
                    format!("{name} is {}, compared with {literal_kind}", field.kind()),
                    literal_offset,
                ));
            }
        };
        self.advance();
        Ok(expr)
    }

    /// Parses `[ "a", "b", … ]` (a trailing comma is allowed).
    fn string_list(&mut self) -> Result<Vec<String>, RuleError> {
        if self.peek().tok != Tok::LBracket {
            return Err(self.error("`[` to start a list of strings after `in`"));
        }
        self.advance();
        let mut values = Vec::new();
        loop {
            match self.peek().tok.clone() {
                Tok::RBracket => break,
                Tok::Str(value) => {
                    self.advance();
                    values.push(value);
                }
                _ => return Err(self.error("a string or `]` in the list")),
            }
            match self.peek().tok {
                Tok::Comma => {
                    self.advance();
                }
                Tok::RBracket => break,
                _ => return Err(self.error("`,` or `]` in the list")),
            }
        }
        self.advance();
        Ok(values)
    }
}
