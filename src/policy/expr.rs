//! Condition expressions: the small language administrators write in policy
//! rules (`internal_ip and not device_cert or network("lab")`).
//!
//! This module owns parsing, name resolution against the [`NetworkTable`],
//! and evaluation. Compiling happens once at config load and reports errors
//! with a line and column an administrator can act on; evaluation runs on
//! every request, so it never allocates:
//!
//! - with at most six distinct atoms, the whole condition is precomputed into
//!   a 64-entry truth table (one `u64`) indexed by the atoms' values;
//! - otherwise it runs a postfix program over a bit stack held in a `u128`.
//!
//! Grammar (keywords are case-sensitive, whitespace and newlines are free):
//!
//! ```text
//! expr    := or
//! or      := and ( "or" and )*
//! and     := unary ( "and" unary )*
//! unary   := "not" unary | primary
//! primary := "(" expr ")" | "always" | "never" | "internal_ip"
//!          | "entrance_pass" | "device_cert" | "invitation" | "network" "(" STRING ")"
//!          | "time" "(" STRING ")" | "weekday" "(" STRING ")" | "date" "(" STRING ")"
//!          | "group" "(" STRING ")" | "entrance_pass_age" CMP DURATION
//! CMP      := "<" | "<=" | ">" | ">="
//! DURATION := DIGITS ( "s" | "m" | "h" | "d" )
//! ```
//!
//! `internal_ip` is `network("internal")`; strings take double or single quotes.
//! `invitation` holds only during a login through an emailed invitation whose
//! PIN was right (for `enroll_when`); on requests it is false.
//!
//! The time terms (`time`, `weekday`, `date`; see [`super::time`]) read the
//! request's local time, `entrance_pass_age` the valid pass's issue time,
//! and `group` a bit of the user's [`GroupMask`]: all are atoms like the
//! others, their arguments turned into integers here, once.

use std::fmt;

use super::ip::{NetMask, NetworkId, NetworkTable};
use super::time::{DateRange, LocalTime, TimeWindow, Weekdays, Zone};

/// Longest accepted source, in bytes.
pub const MAX_SOURCE_LEN: usize = 4096;
/// Deepest accepted nesting of `(` and `not`. Keeps the parser's recursion
/// bounded on hostile input, and the evaluation stack (at most two pending
/// values per parenthesis level) inside 128 bits.
pub const MAX_NESTING: usize = 48;
/// Conditions with at most this many distinct atoms become a truth table.
const TABLE_ATOMS: usize = 6;
/// Name of the network `internal_ip` stands for.
const INTERNAL: &str = "internal";

/// Most distinct `group("…")` names the conditions of one config may use.
pub const MAX_GROUPS: usize = 64;
/// Longest `entrance_pass_age` limit accepted (100 years), in seconds.
const MAX_AGE_SECS: u64 = 100 * 365 * 86_400;

/// What is known about a request, cheap to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub networks: NetMask,
    pub entrance_pass: bool,
    pub device_cert: bool,
    /// A login through an emailed invitation whose PIN was right.
    pub invitation: bool,
    /// When the request is decided, in Unix seconds (the injected clock's).
    pub now: u64,
    /// `now` in the policy's time zone; set with `now` by [`Facts::at`].
    pub local: LocalTime,
    /// When the entrance pass was issued (read only when `entrance_pass`).
    pub pass_issued_at: u64,
    /// The user's groups among those the conditions name (`group("…")`).
    pub groups: GroupMask,
}

impl Facts {
    /// These facts at Unix time `now`, read in `zone` by the time terms.
    #[inline]
    pub fn at(self, now: u64, zone: &Zone) -> Facts {
        Facts { now, local: zone.local(now), ..self }
    }

    /// With the valid entrance pass issued at `issued_at` (or none).
    #[inline]
    pub fn with_pass(self, issued_at: Option<u64>) -> Facts {
        Facts { entrance_pass: issued_at.is_some(), pass_issued_at: issued_at.unwrap_or(0), ..self }
    }
}

/// The groups (users file `groups = […]`) that conditions name, one bit
/// each in the order the config first names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupMask(pub u64);

impl GroupMask {
    pub const EMPTY: GroupMask = GroupMask(0);

    #[inline]
    fn contains(self, bit: u8) -> bool {
        (self.0 >> bit) & 1 == 1
    }
}

/// The group names conditions use, filled while a config compiles; a user's
/// [`GroupMask`] is computed against it once, at load.
#[derive(Clone, Debug, Default)]
pub struct GroupTable {
    names: Vec<String>,
}

impl GroupTable {
    /// The bit of `name`, added if new; `None` when all 64 are taken.
    fn bit(&mut self, name: &str) -> Option<u8> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return Some(i as u8);
        }
        if self.names.len() == MAX_GROUPS {
            return None;
        }
        self.names.push(name.to_string());
        Some((self.names.len() - 1) as u8)
    }

    /// The names conditions use, in bit order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// The mask of a user in `groups`.
    pub fn mask_of<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> GroupMask {
        let mut mask = 0u64;
        for g in groups {
            if let Some(i) = self.names.iter().position(|n| n == g) {
                mask |= 1 << i;
            }
        }
        GroupMask(mask)
    }
}

/// How `entrance_pass_age` is compared with its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmp {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// One fact a condition can test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Atom {
    Network(NetworkId),
    EntrancePass,
    DeviceCert,
    Invitation,
    Time(TimeWindow),
    Weekday(Weekdays),
    Date(DateRange),
    /// A valid pass whose age (now − issued) compares so with the seconds.
    PassAge(Cmp, u64),
    Group(u8),
}

impl Atom {
    #[inline]
    fn holds(self, facts: &Facts) -> bool {
        match self {
            Atom::Network(id) => facts.networks.contains(id),
            Atom::EntrancePass => facts.entrance_pass,
            Atom::Invitation => facts.invitation,
            Atom::DeviceCert => facts.device_cert,
            Atom::Time(w) => w.holds(&facts.local),
            Atom::Weekday(d) => d.holds(&facts.local),
            Atom::Date(r) => r.holds(&facts.local),
            Atom::PassAge(cmp, limit) => {
                // A pass stamped a little ahead (another instance's clock) is new.
                let age = facts.now.saturating_sub(facts.pass_issued_at);
                facts.entrance_pass
                    && match cmp {
                        Cmp::Less => age < limit,
                        Cmp::LessOrEqual => age <= limit,
                        Cmp::Greater => age > limit,
                        Cmp::GreaterOrEqual => age >= limit,
                    }
            }
            Atom::Group(bit) => facts.groups.contains(bit),
        }
    }
}

/// One step of the postfix program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Const(bool),
    Atom(Atom),
    Not,
    And,
    Or,
}

#[derive(Clone, Debug)]
enum Program {
    /// Bit `i` of `bits` is the result when atom `j` has the value of bit
    /// `j` of `i`, for the first `count` atoms.
    Table {
        atoms: [Atom; TABLE_ATOMS],
        count: u8,
        bits: u64,
    },
    Postfix(Box<[Op]>),
}

/// A compiled condition: evaluation does not allocate and takes a few ns.
#[derive(Clone, Debug)]
pub struct Condition {
    source: String,
    program: Program,
    uses_ip: bool,
}

impl Condition {
    /// Parses `src`, resolves its network names against `networks`, and
    /// gives the groups it names their bits in `groups` (one table for all
    /// the conditions of a config: users' masks are computed against it).
    pub fn compile(src: &str, networks: &NetworkTable, groups: &mut GroupTable) -> Result<Condition, ExprError> {
        Condition::compile_with(src, networks, groups, TABLE_ATOMS)
    }

    /// `table_atoms` is the most atoms a truth table may hold; tests pass 0
    /// to force the postfix path.
    fn compile_with(
        src: &str,
        networks: &NetworkTable,
        groups: &mut GroupTable,
        table_atoms: usize,
    ) -> Result<Condition, ExprError> {
        let ops = Parser::parse(src, networks, groups)?;
        if stack_depth(&ops) > 128 {
            return Err(ExprError::at(src, 0, ExprErrorKind::TooDeep { limit: MAX_NESTING }));
        }
        let atoms = distinct_atoms(&ops);
        let uses_ip = atoms.iter().any(|a| matches!(a, Atom::Network(_)));
        let program = if atoms.len() <= table_atoms.min(TABLE_ATOMS) {
            truth_table(&ops, &atoms)
        } else {
            Program::Postfix(ops.into_boxed_slice())
        };
        Ok(Condition { source: src.trim().to_string(), program, uses_ip })
    }

    /// The condition that always holds.
    pub fn always() -> Condition {
        Condition::constant("always", true)
    }

    /// The condition that never holds.
    pub fn never() -> Condition {
        Condition::constant("never", false)
    }

    fn constant(source: &str, value: bool) -> Condition {
        let program = truth_table(&[Op::Const(value)], &[]);
        Condition { source: source.to_string(), program, uses_ip: false }
    }

    /// Whether the condition holds for a request with these facts.
    #[inline]
    pub fn eval(&self, facts: &Facts) -> bool {
        match &self.program {
            Program::Table { atoms, count, bits } => {
                let mut index = 0u32;
                for (i, atom) in atoms.iter().take(usize::from(*count)).enumerate() {
                    index |= u32::from(atom.holds(facts)) << i;
                }
                (bits >> index) & 1 == 1
            }
            Program::Postfix(ops) => run_postfix(ops, |atom| atom.holds(facts)),
        }
    }

    /// The text as written (trimmed).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when any `network(...)` or `internal_ip` atom is used.
    pub fn uses_ip(&self) -> bool {
        self.uses_ip
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Runs a postfix program; the stack is the bits of a `u128`, top at bit 0.
/// The compiler guarantees the program is well formed and at most 128 deep.
#[inline]
fn run_postfix(ops: &[Op], atom_value: impl Fn(Atom) -> bool) -> bool {
    let mut stack = 0u128;
    for op in ops {
        stack = match *op {
            Op::Const(b) => (stack << 1) | u128::from(b),
            Op::Atom(a) => (stack << 1) | u128::from(atom_value(a)),
            Op::Not => stack ^ 1,
            Op::And => (stack >> 1) & (stack | !1),
            Op::Or => (stack >> 1) | (stack & 1),
        };
    }
    stack & 1 == 1
}

/// The deepest the evaluation stack gets while running `ops`.
fn stack_depth(ops: &[Op]) -> usize {
    let mut depth = 0usize;
    let mut max = 0;
    for op in ops {
        match op {
            Op::Const(_) | Op::Atom(_) => depth += 1,
            Op::And | Op::Or => depth = depth.saturating_sub(1),
            Op::Not => {}
        }
        max = max.max(depth);
    }
    max
}

/// The atoms of `ops`, each once, in order of first use.
fn distinct_atoms(ops: &[Op]) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for op in ops {
        if let Op::Atom(a) = op {
            if !atoms.contains(a) {
                atoms.push(*a);
            }
        }
    }
    atoms
}

/// Evaluates `ops` for every combination of the (at most six) `atoms`.
fn truth_table(ops: &[Op], atoms: &[Atom]) -> Program {
    let mut table_atoms = [Atom::EntrancePass; TABLE_ATOMS];
    table_atoms[..atoms.len()].copy_from_slice(atoms);
    let mut bits = 0u64;
    for index in 0..(1u32 << atoms.len()) {
        let value_of = |atom: Atom| {
            let position = atoms.iter().position(|a| *a == atom).unwrap_or(0);
            (index >> position) & 1 == 1
        };
        bits |= u64::from(run_postfix(ops, value_of)) << index;
    }
    Program::Table { atoms: table_atoms, count: atoms.len() as u8, bits }
}

/// A condition that could not be compiled: where, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExprError {
    /// Byte offset in the source where the problem is.
    pub offset: usize,
    /// 1-based line within the source.
    pub line: usize,
    /// 1-based column within the line, counted in characters.
    pub column: usize,
    pub kind: ExprErrorKind,
}

/// What was wrong with a condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprErrorKind {
    /// Nothing but whitespace was written.
    Empty,
    /// The source is longer than [`MAX_SOURCE_LEN`] bytes.
    TooLong { len: usize, limit: usize },
    /// `(` and `not` are nested deeper than [`MAX_NESTING`].
    TooDeep { limit: usize },
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A quoted string has no closing quote.
    UnterminatedString,
    /// A word that is not a keyword.
    UnknownWord(String),
    /// Something other than what the grammar allows here.
    Expected { expected: &'static str, found: String },
    /// A complete condition is followed by more text.
    TrailingInput { found: String },
    /// `network("name")` names no defined network.
    UnknownNetwork { name: String, known: Vec<String> },
    /// `internal_ip` is used but no network is called `internal`.
    NoInternalNetwork,
    /// The string of `time(…)`, `weekday(…)`, `date(…)` or `group(…)` says nothing it can mean.
    BadArgument { term: &'static str, message: String },
    /// The conditions name more than [`MAX_GROUPS`] distinct groups.
    TooManyGroups { limit: usize },
}

impl ExprError {
    fn at(src: &str, offset: usize, kind: ExprErrorKind) -> ExprError {
        let before = &src.as_bytes()[..offset.min(src.len())];
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        let column = before[line_start..].iter().filter(|b| (**b & 0xC0) != 0x80).count() + 1;
        ExprError { offset, line, column, kind }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.kind)
    }
}

impl std::error::Error for ExprError {}

impl fmt::Display for ExprErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExprErrorKind::Empty => {
                write!(f, "the condition is empty; write e.g. `always` or `internal_ip and device_cert`")
            }
            ExprErrorKind::TooLong { len, limit } => {
                write!(f, "the condition is {len} bytes long; at most {limit} are accepted")
            }
            ExprErrorKind::TooDeep { limit } => {
                write!(f, "parentheses and `not` are nested more than {limit} deep")
            }
            ExprErrorKind::UnexpectedChar(c) => write_unexpected_char(f, *c),
            ExprErrorKind::UnterminatedString => {
                write!(f, "this string has no closing quote")
            }
            ExprErrorKind::UnknownWord(w) => {
                write!(f, "unknown condition `{w}`; expected {PRIMARY}")
            }
            ExprErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected} but found {found}")
            }
            ExprErrorKind::TrailingInput { found } => {
                write!(f, "unexpected {found} after a complete condition; expected `and`, `or` or the end")
            }
            ExprErrorKind::UnknownNetwork { name, known } => write_unknown_network(f, name, known),
            ExprErrorKind::NoInternalNetwork => {
                write!(f, "`internal_ip` needs a network named \"{INTERNAL}\", and none is defined")
            }
            ExprErrorKind::BadArgument { term, message } => write!(f, "{term}(…): {message}"),
            ExprErrorKind::TooManyGroups { limit } => {
                write!(f, "the conditions name more than {limit} different groups")
            }
        }
    }
}

fn write_unexpected_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    write!(f, "unexpected character {c:?}")?;
    if matches!(c, '&' | '|' | '!') {
        write!(f, "; write `and`, `or` and `not` instead")?;
    }
    Ok(())
}

fn write_unknown_network(f: &mut fmt::Formatter<'_>, name: &str, known: &[String]) -> fmt::Result {
    write!(f, "unknown network {name:?}; ")?;
    if known.is_empty() {
        return write!(f, "no networks are defined");
    }
    let quoted: Vec<String> = known.iter().map(|k| format!("{k:?}")).collect();
    write!(f, "the defined networks are {}", quoted.join(", "))
}

/// How a primary is described in errors.
const PRIMARY: &str = "a condition (always, never, internal_ip, entrance_pass, device_cert, \
                       invitation, network(\"name\"), time(\"08:00-20:00\"), weekday(\"mon-fri\"), \
                       date(\"2026-12-24..2027-01-03\"), group(\"name\"), entrance_pass_age < 30d, \
                       `not` or `(`)";
/// How the limit of `entrance_pass_age` is described in errors.
const AGE_LIMIT: &str = "a duration such as 30d (a number and s, m, h or d)";

/// A token and what it says; strings are the text between the quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    Word(&'a str),
    Str(&'a str),
    /// `<`, `<=`, `>` or `>=`.
    Cmp(&'a str),
    /// Letters and digits starting with a digit, e.g. `30d`.
    Amount(&'a str),
    End,
}

impl Token<'_> {
    /// How the token is named in error messages.
    fn describe(self) -> String {
        match self {
            Token::Open => "`(`".to_string(),
            Token::Close => "`)`".to_string(),
            Token::Word(w) => format!("`{w}`"),
            Token::Str(s) => format!("the string {s:?}"),
            Token::Cmp(c) | Token::Amount(c) => format!("`{c}`"),
            Token::End => "end of input".to_string(),
        }
    }
}

/// Splits the source into tokens, remembering the offset of each.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn next_token(&mut self) -> Result<(usize, Token<'a>), ExprError> {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start();
        let start = self.pos + (rest.len() - trimmed.len());
        let Some(c) = trimmed.chars().next() else {
            self.pos = self.src.len();
            return Ok((start, Token::End));
        };
        let (len, token) = match c {
            '(' => (1, Token::Open),
            ')' => (1, Token::Close),
            '"' | '\'' => self.string(start, c)?,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let len = trimmed.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
                let len = len.unwrap_or(trimmed.len());
                (len, Token::Word(&trimmed[..len]))
            }
            c if c.is_ascii_digit() => {
                let len = trimmed.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(trimmed.len());
                (len, Token::Amount(&trimmed[..len]))
            }
            '<' | '>' => {
                let len = if trimmed[1..].starts_with('=') { 2 } else { 1 };
                (len, Token::Cmp(&trimmed[..len]))
            }
            c => return Err(ExprError::at(self.src, start, ExprErrorKind::UnexpectedChar(c))),
        };
        self.pos = start + len;
        Ok((start, token))
    }

    /// The quoted string at `start`: its length with quotes, and the token.
    fn string(&self, start: usize, quote: char) -> Result<(usize, Token<'a>), ExprError> {
        let body = &self.src[start + 1..];
        match body.find(quote) {
            Some(end) => Ok((end + 2, Token::Str(&body[..end]))),
            None => Err(ExprError::at(self.src, start, ExprErrorKind::UnterminatedString)),
        }
    }
}

/// Recursive-descent parser that emits the postfix program directly.
struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The next token, already read.
    peeked: (usize, Token<'a>),
    networks: &'a NetworkTable,
    groups: &'a mut GroupTable,
    ops: Vec<Op>,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn parse(src: &'a str, networks: &'a NetworkTable, groups: &'a mut GroupTable) -> Result<Vec<Op>, ExprError> {
        if src.len() > MAX_SOURCE_LEN {
            let kind = ExprErrorKind::TooLong { len: src.len(), limit: MAX_SOURCE_LEN };
            return Err(ExprError::at(src, 0, kind));
        }
        if src.trim().is_empty() {
            return Err(ExprError::at(src, 0, ExprErrorKind::Empty));
        }
        let mut lexer = Lexer { src, pos: 0 };
        let peeked = lexer.next_token()?;
        let mut parser = Parser { lexer, peeked, networks, groups, ops: Vec::new(), depth: 0 };
        parser.or()?;
        match parser.peeked {
            (_, Token::End) => Ok(parser.ops),
            (at, found) => Err(parser.error(at, ExprErrorKind::TrailingInput { found: found.describe() })),
        }
    }

    fn error(&self, offset: usize, kind: ExprErrorKind) -> ExprError {
        ExprError::at(self.lexer.src, offset, kind)
    }

    /// Returns the peeked token and reads the next one.
    fn advance(&mut self) -> Result<(usize, Token<'a>), ExprError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.peeked, next))
    }

    fn expect(&mut self, want: Token<'_>, expected: &'static str) -> Result<(usize, Token<'a>), ExprError> {
        let (at, found) = self.peeked;
        if std::mem::discriminant(&found) != std::mem::discriminant(&want) {
            let kind = ExprErrorKind::Expected { expected, found: found.describe() };
            return Err(self.error(at, kind));
        }
        self.advance()
    }

    fn or(&mut self) -> Result<(), ExprError> {
        self.and()?;
        while self.peeked.1 == Token::Word("or") {
            self.advance()?;
            self.and()?;
            self.ops.push(Op::Or);
        }
        Ok(())
    }

    fn and(&mut self) -> Result<(), ExprError> {
        self.unary()?;
        while self.peeked.1 == Token::Word("and") {
            self.advance()?;
            self.unary()?;
            self.ops.push(Op::And);
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), ExprError> {
        let (at, token) = self.peeked;
        if !matches!(token, Token::Word("not") | Token::Open) {
            return self.primary();
        }
        if self.depth >= MAX_NESTING {
            return Err(self.error(at, ExprErrorKind::TooDeep { limit: MAX_NESTING }));
        }
        self.depth += 1;
        self.advance()?;
        if token == Token::Open {
            self.or()?;
            self.expect(Token::Close, "`)`")?;
        } else {
            self.unary()?;
            self.ops.push(Op::Not);
        }
        self.depth -= 1;
        Ok(())
    }

    fn primary(&mut self) -> Result<(), ExprError> {
        let (at, token) = self.advance()?;
        let op = match token {
            Token::Word("always") => Op::Const(true),
            Token::Word("never") => Op::Const(false),
            Token::Word("entrance_pass") => Op::Atom(Atom::EntrancePass),
            Token::Word("invitation") => Op::Atom(Atom::Invitation),
            Token::Word("device_cert") => Op::Atom(Atom::DeviceCert),
            Token::Word("internal_ip") => match self.networks.id(INTERNAL) {
                Some(id) => Op::Atom(Atom::Network(id)),
                None => return Err(self.error(at, ExprErrorKind::NoInternalNetwork)),
            },
            Token::Word("network") => Op::Atom(Atom::Network(self.network_argument()?)),
            Token::Word("time") => Op::Atom(Atom::Time(self.argument("time", TimeWindow::parse)?)),
            Token::Word("weekday") => Op::Atom(Atom::Weekday(self.argument("weekday", Weekdays::parse)?)),
            Token::Word("date") => Op::Atom(Atom::Date(self.argument("date", DateRange::parse)?)),
            Token::Word("group") => Op::Atom(Atom::Group(self.group_argument()?)),
            Token::Word("entrance_pass_age") => Op::Atom(self.pass_age()?),
            Token::Word(w) if !matches!(w, "and" | "or") => {
                return Err(self.error(at, ExprErrorKind::UnknownWord(w.to_string())));
            }
            found => {
                let kind = ExprErrorKind::Expected { expected: PRIMARY, found: found.describe() };
                return Err(self.error(at, kind));
            }
        };
        self.ops.push(op);
        Ok(())
    }

    /// `( "name" )` after `network`, resolved to its id.
    fn network_argument(&mut self) -> Result<NetworkId, ExprError> {
        let (at, name) = self.string_argument(
            "`(` after `network`",
            "a quoted network name, e.g. \"lab\"",
            "`)` after the network name",
        )?;
        self.networks.id(name).ok_or_else(|| {
            let known = self.networks.names().map(str::to_string).collect();
            self.error(at, ExprErrorKind::UnknownNetwork { name: name.to_string(), known })
        })
    }

    /// `( STRING )`: the string and where it starts.
    fn string_argument(
        &mut self,
        open: &'static str,
        expected: &'static str,
        close: &'static str,
    ) -> Result<(usize, &'a str), ExprError> {
        self.expect(Token::Open, open)?;
        let (at, text) = match self.peeked {
            (at, Token::Str(text)) => (at, text),
            (at, found) => {
                let found = found.describe();
                return Err(self.error(at, ExprErrorKind::Expected { expected, found }));
            }
        };
        self.advance()?;
        self.expect(Token::Close, close)?;
        Ok((at, text))
    }

    /// `( "…" )` after `time`, `weekday` or `date`, parsed by `parse`;
    /// an error points at the string.
    fn argument<T>(&mut self, term: &'static str, parse: fn(&str) -> Result<T, String>) -> Result<T, ExprError> {
        let (open, expected, close) = match term {
            "time" => ("`(` after `time`", "a quoted window, e.g. \"08:00-20:00\"", "`)` after the window"),
            "weekday" => ("`(` after `weekday`", "quoted days, e.g. \"mon-fri\"", "`)` after the days"),
            _ => ("`(` after `date`", "quoted dates, e.g. \"2026-12-24..2027-01-03\"", "`)` after the dates"),
        };
        let (at, text) = self.string_argument(open, expected, close)?;
        parse(text).map_err(|message| self.error(at, ExprErrorKind::BadArgument { term, message }))
    }

    /// `( "name" )` after `group`: the group's bit.
    fn group_argument(&mut self) -> Result<u8, ExprError> {
        let (at, name) =
            self.string_argument("`(` after `group`", "a quoted group name, e.g. \"finance\"", "`)` after the group")?;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !valid {
            let message = format!(
                "`{}` is not a group name (1–64 letters, digits, `.`, `_`, `-` or `@`, as in the users file)",
                name.escape_default()
            );
            return Err(self.error(at, ExprErrorKind::BadArgument { term: "group", message }));
        }
        self.groups.bit(name).ok_or_else(|| self.error(at, ExprErrorKind::TooManyGroups { limit: MAX_GROUPS }))
    }

    /// `< 30d` (or `<=`, `>`, `>=`) after `entrance_pass_age`.
    fn pass_age(&mut self) -> Result<Atom, ExprError> {
        let (at, token) = self.advance()?;
        let cmp = match token {
            Token::Cmp("<") => Cmp::Less,
            Token::Cmp("<=") => Cmp::LessOrEqual,
            Token::Cmp(">") => Cmp::Greater,
            Token::Cmp(">=") => Cmp::GreaterOrEqual,
            found => {
                let expected = "`<`, `<=`, `>` or `>=` after `entrance_pass_age`";
                return Err(self.error(at, ExprErrorKind::Expected { expected, found: found.describe() }));
            }
        };
        let (at, token) = self.advance()?;
        match token {
            Token::Amount(a) => age_limit(a).map(|secs| Atom::PassAge(cmp, secs)).ok_or_else(|| {
                self.error(at, ExprErrorKind::Expected { expected: AGE_LIMIT, found: token.describe() })
            }),
            found => Err(self.error(at, ExprErrorKind::Expected { expected: AGE_LIMIT, found: found.describe() })),
        }
    }
}

/// `30d`, `12h`, `90m`, `3600s` in seconds; at most 100 years.
fn age_limit(text: &str) -> Option<u64> {
    let unit = match text.as_bytes().last()? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit).filter(|s| *s <= MAX_AGE_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ip::NetworkTableBuilder;

    /// Networks `internal` (0), `lab` (1), `office` (2) and `n3`..`n9`.
    fn networks() -> NetworkTable {
        let mut b = NetworkTableBuilder::new();
        for name in ["internal", "lab", "office"] {
            b.add(name, &[]).unwrap();
        }
        for i in 3..10 {
            b.add(&format!("n{i}"), &[]).unwrap();
        }
        b.build()
    }

    fn compile(src: &str) -> Condition {
        Condition::compile(src, &networks(), &mut GroupTable::default()).unwrap()
    }

    fn error(src: &str) -> ExprError {
        Condition::compile(src, &networks(), &mut GroupTable::default()).unwrap_err()
    }

    fn facts(nets: &[u8], entrance_pass: bool, device_cert: bool) -> Facts {
        let networks = nets.iter().fold(NetMask::EMPTY, |m, i| m.with(NetworkId(*i)));
        Facts { networks, entrance_pass, device_cert, ..Facts::default() }
    }

    /// Every combination of internal, lab, entrance_pass, device_cert.
    fn all_facts() -> impl Iterator<Item = (Facts, [bool; 4])> {
        (0..16u8).map(|i| {
            let bit = |n: u8| (i >> n) & 1 == 1;
            let nets: Vec<u8> = [0u8, 1].into_iter().filter(|n| bit(*n)).collect();
            (facts(&nets, bit(2), bit(3)), [bit(0), bit(1), bit(2), bit(3)])
        })
    }

    #[test]
    fn all_six_atoms() {
        assert!(compile("always").eval(&Facts::default()));
        assert!(!compile("never").eval(&facts(&[0, 1], true, true)));
        assert!(compile("internal_ip").eval(&facts(&[0], false, false)));
        assert!(!compile("internal_ip").eval(&facts(&[1], true, true)));
        assert!(compile("entrance_pass").eval(&facts(&[], true, false)));
        let invited = Facts { invitation: true, ..facts(&[], false, false) };
        assert!(compile("internal_ip or invitation").eval(&invited));
        assert!(!compile("internal_ip or invitation").eval(&facts(&[], true, true)), "false on requests");
        assert!(!compile("entrance_pass").eval(&facts(&[], false, true)));
        assert!(compile("device_cert").eval(&facts(&[], false, true)));
        assert!(!compile("device_cert").eval(&facts(&[], true, false)));
        assert!(compile("network(\"lab\")").eval(&facts(&[1], false, false)));
        assert!(compile("network('lab')").eval(&facts(&[1], false, false)));
        assert!(!compile("network(\"lab\")").eval(&facts(&[0], true, true)));
    }

    #[test]
    fn precedence_not_then_and_then_or() {
        // a or b and c == a or (b and c)
        let c = compile("internal_ip or entrance_pass and device_cert");
        for (f, [a, _, b, d]) in all_facts() {
            assert_eq!(c.eval(&f), a || (b && d), "{f:?}");
        }
        // not a and b == (not a) and b
        let c = compile("not internal_ip and entrance_pass");
        for (f, [a, _, b, _]) in all_facts() {
            assert_eq!(c.eval(&f), !a && b, "{f:?}");
        }
        let c = compile("not (internal_ip and entrance_pass)");
        for (f, [a, _, b, _]) in all_facts() {
            assert_eq!(c.eval(&f), !(a && b), "{f:?}");
        }
        let c = compile("(internal_ip or entrance_pass) and device_cert");
        for (f, [a, _, b, d]) in all_facts() {
            assert_eq!(c.eval(&f), (a || b) && d, "{f:?}");
        }
        let c = compile("not not device_cert");
        for (f, [_, _, _, d]) in all_facts() {
            assert_eq!(c.eval(&f), d);
        }
    }

    #[test]
    fn whitespace_and_newlines_are_free() {
        let c = compile("\n  internal_ip\n\tand(not\r\ndevice_cert)  ");
        assert_eq!(c.source(), "internal_ip\n\tand(not\r\ndevice_cert)");
        assert!(c.eval(&facts(&[0], false, false)));
        assert!(!c.eval(&facts(&[0], false, true)));
        assert!(compile("network ( 'office' )").eval(&facts(&[2], false, false)));
    }

    #[test]
    fn uses_ip_and_constants() {
        assert!(compile("internal_ip or always").uses_ip());
        assert!(compile("not network(\"lab\")").uses_ip());
        assert!(!compile("device_cert and entrance_pass").uses_ip());
        assert!(Condition::always().eval(&Facts::default()));
        assert!(!Condition::never().eval(&facts(&[0], true, true)));
        assert_eq!(Condition::always().source(), "always");
        assert!(!Condition::never().uses_ip());
    }

    fn assert_error(src: &str, line: usize, column: usize, kind: ExprErrorKind) -> String {
        let e = error(src);
        assert_eq!((e.line, e.column, &e.kind), (line, column, &kind), "{src:?}: {e}");
        e.to_string()
    }

    #[test]
    fn errors_say_what_and_where() {
        let missing = ExprErrorKind::Expected { expected: "`)`", found: "end of input".into() };
        let text = assert_error(
            "(device_cert or",
            1,
            16,
            ExprErrorKind::Expected { expected: PRIMARY, found: "end of input".into() },
        );
        assert!(text.starts_with("line 1, column 16: expected a condition"), "{text}");
        let text = assert_error("(internal_ip and device_cert", 1, 29, missing);
        assert_eq!(text, "line 1, column 29: expected `)` but found end of input");
        assert_error("   ", 1, 1, ExprErrorKind::Empty);
        assert_error("device_cert &&\nentrance_pass", 1, 13, ExprErrorKind::UnexpectedChar('&'));
        assert!(error("device_cert || entrance_pass").to_string().contains("write `and`, `or` and `not` instead"));
        assert_error("network(\n  \"lab)", 2, 3, ExprErrorKind::UnterminatedString);
        assert_error("internal", 1, 1, ExprErrorKind::UnknownWord("internal".into()));
        assert_error(
            "device_cert entrance_pass",
            1,
            13,
            ExprErrorKind::TrailingInput { found: "`entrance_pass`".into() },
        );
        assert_error("always)", 1, 7, ExprErrorKind::TrailingInput { found: "`)`".into() });
        assert_error("and always", 1, 1, ExprErrorKind::Expected { expected: PRIMARY, found: "`and`".into() });
        let expected = "`(` after `network`";
        assert_error("network lab", 1, 9, ExprErrorKind::Expected { expected, found: "`lab`".into() });
        let expected = "a quoted network name, e.g. \"lab\"";
        assert_error("network(lab)", 1, 9, ExprErrorKind::Expected { expected, found: "`lab`".into() });
        let expected = "`)` after the network name";
        assert_error("network('lab'", 1, 14, ExprErrorKind::Expected { expected, found: "end of input".into() });
    }

    #[test]
    fn unknown_network_lists_known_ones() {
        let e = error("always and\n  network(\"labs\")");
        assert_eq!((e.line, e.column, e.offset), (2, 11, 21));
        let ExprErrorKind::UnknownNetwork { name, known } = &e.kind else { panic!("{e:?}") };
        assert_eq!(name, "labs");
        assert_eq!(known.len(), 10);
        assert!(e
            .to_string()
            .contains(r#"unknown network "labs"; the defined networks are "internal", "lab", "office""#));
        let empty = NetworkTableBuilder::new().build();
        let e = Condition::compile("network('x')", &empty, &mut GroupTable::default()).unwrap_err();
        assert!(e.to_string().ends_with("no networks are defined"), "{e}");
    }

    #[test]
    fn internal_ip_needs_an_internal_network() {
        let mut b = NetworkTableBuilder::new();
        b.add("lab", &[]).unwrap();
        let e = Condition::compile("device_cert or internal_ip", &b.build(), &mut GroupTable::default()).unwrap_err();
        assert_eq!((e.offset, e.column, &e.kind), (15, 16, &ExprErrorKind::NoInternalNetwork));
        assert!(e.to_string().contains("needs a network named \"internal\""));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let mut b = NetworkTableBuilder::new();
        b.add("é", &[]).unwrap();
        let e = Condition::compile("network(\"é\") or ü", &b.build(), &mut GroupTable::default()).unwrap_err();
        assert_eq!((e.offset, e.column, e.kind), (17, 17, ExprErrorKind::UnexpectedChar('ü')));
    }

    #[test]
    fn too_long_and_too_deep_are_refused() {
        let long = format!("always{}", " ".repeat(MAX_SOURCE_LEN));
        assert_eq!(error(&long).kind, ExprErrorKind::TooLong { len: MAX_SOURCE_LEN + 6, limit: MAX_SOURCE_LEN });
        let ok = format!("{}always{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(compile(&ok).eval(&Facts::default()));
        let deep = format!("{}always{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        let e = error(&deep);
        assert_eq!((e.offset, &e.kind), (MAX_NESTING, &ExprErrorKind::TooDeep { limit: MAX_NESTING }));
        let nots = format!("{}always", "not ".repeat(1000));
        assert_eq!(error(&nots).kind, ExprErrorKind::TooDeep { limit: MAX_NESTING });
        let hostile = "(".repeat(MAX_SOURCE_LEN);
        assert_eq!(error(&hostile).kind, ExprErrorKind::TooDeep { limit: MAX_NESTING });
    }

    #[test]
    fn widest_stack_fits_the_evaluator() {
        // Two pending values per level: `a or b and (...)`, as deep as allowed.
        let mut src = String::from("device_cert");
        for _ in 0..MAX_NESTING {
            src = format!("entrance_pass or device_cert and ({src})");
        }
        let c = Condition::compile_with(&src, &networks(), &mut GroupTable::default(), 0).unwrap();
        assert!(c.eval(&facts(&[], false, true)));
        assert!(c.eval(&facts(&[], true, false)));
        assert!(!c.eval(&facts(&[], false, false)));
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// A naive expression tree, printed fully parenthesised for the parser.
    enum Tree {
        Const(bool),
        Atom(usize),
        Not(Box<Tree>),
        And(Box<Tree>, Box<Tree>),
        Or(Box<Tree>, Box<Tree>),
    }

    /// Atom `i`: networks 0..10 are network("..."), 10 entrance_pass, 11 device_cert.
    fn atom_source(i: usize) -> String {
        match i {
            0 => "internal_ip".to_string(),
            10 => "entrance_pass".to_string(),
            11 => "device_cert".to_string(),
            _ => format!("network(\"{}\")", networks().name(NetworkId(i as u8))),
        }
    }

    impl Tree {
        fn random(rng: &mut XorShift, depth: u32, atoms: usize) -> Tree {
            let pick = if depth == 0 { 0 } else { rng.next() % 8 };
            if pick == 0 {
                return match rng.next() % 8 {
                    0 => Tree::Const(rng.next() & 1 == 0),
                    _ => Tree::Atom((rng.next() as usize) % atoms),
                };
            }
            let a = Box::new(Tree::random(rng, depth - 1, atoms));
            match pick {
                1 | 2 => Tree::Not(a),
                3..=5 => Tree::And(a, Box::new(Tree::random(rng, depth - 1, atoms))),
                _ => Tree::Or(a, Box::new(Tree::random(rng, depth - 1, atoms))),
            }
        }

        fn source(&self) -> String {
            match self {
                Tree::Const(b) => if *b { "always" } else { "never" }.to_string(),
                Tree::Atom(i) => atom_source(*i),
                Tree::Not(t) => format!("not {}", t.source()),
                Tree::And(a, b) => format!("({} and {})", a.source(), b.source()),
                Tree::Or(a, b) => format!("({} or\n{})", a.source(), b.source()),
            }
        }

        fn eval(&self, values: &[bool; 12]) -> bool {
            match self {
                Tree::Const(b) => *b,
                Tree::Atom(i) => values[*i],
                Tree::Not(t) => !t.eval(values),
                Tree::And(a, b) => a.eval(values) && b.eval(values),
                Tree::Or(a, b) => a.eval(values) || b.eval(values),
            }
        }
    }

    fn random_values(rng: &mut XorShift) -> ([bool; 12], Facts) {
        let bits = rng.next();
        let values: [bool; 12] = std::array::from_fn(|i| (bits >> i) & 1 == 1);
        let nets: Vec<u8> = (0..10u8).filter(|i| values[usize::from(*i)]).collect();
        (values, facts(&nets, values[10], values[11]))
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let pieces = ["(", ")", " ", "\n", "not", "and", "or", "always", "'", "\"", "é", "&", "lab"];
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let table = networks();
        for _ in 0..20_000 {
            let len = (rng.next() % 12) as usize;
            let src: String = (0..len).map(|_| pieces[(rng.next() as usize) % pieces.len()]).collect();
            if let Err(e) = Condition::compile(&src, &table, &mut GroupTable::default()) {
                assert!(e.offset <= src.len() && src.is_char_boundary(e.offset), "{src:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn table_and_postfix_agree_with_a_naive_tree() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let table = networks();
        let (mut tables, mut postfixes) = (0, 0);
        for round in 0..600 {
            let (atoms, depth) = [(3, 4), (6, 5), (12, 8)][round % 3];
            let tree = Tree::random(&mut rng, depth, atoms);
            let src = tree.source();
            let fast = Condition::compile(&src, &table, &mut GroupTable::default()).unwrap();
            let slow = Condition::compile_with(&src, &table, &mut GroupTable::default(), 0).unwrap();
            match fast.program {
                Program::Table { .. } => tables += 1,
                Program::Postfix(_) => postfixes += 1,
            }
            for _ in 0..64 {
                let (values, facts) = random_values(&mut rng);
                let want = tree.eval(&values);
                assert_eq!(fast.eval(&facts), want, "{src}");
                assert_eq!(slow.eval(&facts), want, "{src}");
            }
        }
        assert!(tables > 100 && postfixes > 50, "{tables} tables, {postfixes} postfix");
    }

    /// Facts at a Tokyo wall-clock moment.
    fn tokyo(civil: &str) -> Facts {
        let dt: jiff::civil::DateTime = civil.parse().unwrap();
        let at = dt.to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Tokyo").unwrap()).unwrap().timestamp().as_second();
        Facts::default().at(at as u64, &Zone::named("Asia/Tokyo").unwrap())
    }

    #[test]
    fn time_terms_combine_like_the_others() {
        let office = compile("weekday(\"mon-fri\") and time(\"08:00-20:00\") and not date('2026-12-24..2027-01-03')");
        let quiet = compile("time(\"20:50-08:10\")");
        let rows = [
            ("2026-12-07T10:00:00", true, false),  // Monday morning
            ("2026-12-07T21:00:00", false, true),  // Monday evening
            ("2026-12-08T08:09:59", true, true),   // inside both
            ("2026-12-08T08:10:00", true, false),  // quiet window ends
            ("2026-12-07T20:50:00", false, true),  // quiet window starts
            ("2026-12-12T10:00:00", false, false), // Saturday
            ("2026-12-25T10:00:00", false, false), // a Friday in the holidays
            ("2027-01-04T10:00:00", true, false),  // the Monday after
        ];
        for (civil, in_office, in_quiet) in rows {
            let f = tokyo(civil);
            assert_eq!((office.eval(&f), quiet.eval(&f)), (in_office, in_quiet), "{civil}");
        }
        // More than six atoms: the postfix program reads them the same.
        let wide = "internal_ip or device_cert or entrance_pass or network('lab') or network('office') or \
                    group('finance') or weekday('sat,sun')";
        let c = compile(wide);
        assert!(matches!(c.program, Program::Postfix(_)));
        assert!(c.eval(&tokyo("2026-12-12T10:00:00")) && !c.eval(&tokyo("2026-12-11T10:00:00")));
    }

    #[test]
    fn pass_age_needs_a_valid_pass_and_compares_its_age() {
        const DAY: u64 = 86_400;
        let now = 1_800_000_000;
        let with = |issued: Option<u64>| Facts { now, ..Facts::default() }.with_pass(issued);
        let young = compile("entrance_pass_age < 30d");
        assert!(young.eval(&with(Some(now - 30 * DAY + 1))));
        assert!(!young.eval(&with(Some(now - 30 * DAY))));
        assert!(young.eval(&with(Some(now + 30))), "issued a little ahead: new");
        assert!(!young.eval(&with(None)), "no pass, no age");
        assert!(!young.eval(&Facts { now, pass_issued_at: now, ..Facts::default() }), "an issue time alone is no pass");
        let at_most = compile("entrance_pass_age<=12h");
        assert!(at_most.eval(&with(Some(now - 12 * 3600))) && !at_most.eval(&with(Some(now - 12 * 3600 - 1))));
        let old = compile("entrance_pass_age > 90m");
        assert!(old.eval(&with(Some(now - 5401))) && !old.eval(&with(Some(now - 5400))) && !old.eval(&with(None)));
        let old = compile("entrance_pass_age >= 3600s");
        assert!(old.eval(&with(Some(now - 3600))) && !old.eval(&with(Some(now - 3599))));
        let skip = compile("internal_ip or entrance_pass_age < 30d");
        assert!(skip.eval(&facts(&[0], false, false)) && !skip.eval(&with(Some(now - 31 * DAY))));
    }

    #[test]
    fn groups_get_one_bit_per_name_across_a_config() {
        let mut table = GroupTable::default();
        let n = networks();
        let finance = Condition::compile("group(\"finance\")", &n, &mut table).unwrap();
        let either = Condition::compile("group('ops') or group(\"finance\")", &n, &mut table).unwrap();
        assert_eq!(table.names().collect::<Vec<_>>(), ["finance", "ops"]);
        let alice = Facts { groups: table.mask_of(["staff", "finance"]), ..Facts::default() };
        let bob = Facts { groups: table.mask_of(["ops"]), ..Facts::default() };
        assert!(finance.eval(&alice) && !finance.eval(&bob) && !finance.eval(&Facts::default()));
        assert!(either.eval(&alice) && either.eval(&bob));
        for i in 2..MAX_GROUPS {
            Condition::compile(&format!("group('g{i}')"), &n, &mut table).unwrap();
        }
        let e = Condition::compile("always or\n group('one-too-many')", &n, &mut table).unwrap_err();
        assert_eq!((e.line, e.column, &e.kind), (2, 8, &ExprErrorKind::TooManyGroups { limit: MAX_GROUPS }));
        Condition::compile("group('finance')", &n, &mut table).unwrap();
    }

    #[test]
    fn bad_arguments_name_line_and_column() {
        let e = error("always and\n  time(\"8-20\")");
        assert_eq!((e.line, e.column), (2, 8), "{e}");
        assert!(e.to_string().starts_with("line 2, column 8: time(…): `8` is not a time of day"), "{e}");
        let e = error("weekday('mon-fry')");
        assert_eq!((e.line, e.column), (1, 9));
        assert!(e.to_string().contains("weekday(…): `fry` is not a day"), "{e}");
        let e = error("date(\"2026-02-30\")");
        assert!(e.to_string().contains("date(…): `2026-02-30` is not a date") && e.to_string().contains("no such day"));
        let e = error("date('2027-01-03..2026-12-24')");
        assert!(e.to_string().ends_with("ends before it starts"), "{e}");
        assert!(error("group('a b')").to_string().contains("is not a group name"));
        let expected = "a quoted window, e.g. \"08:00-20:00\"";
        assert_error("time(08:00)", 1, 6, ExprErrorKind::Expected { expected, found: "`08`".into() });
        let expected = "`<`, `<=`, `>` or `>=` after `entrance_pass_age`";
        assert_error("entrance_pass_age", 1, 18, ExprErrorKind::Expected { expected, found: "end of input".into() });
        for (src, found) in
            [("entrance_pass_age < 30", "`30`"), ("entrance_pass_age < 30w", "`30w`"), ("entrance_pass_age < d", "`d`")]
        {
            assert_error(src, 1, 21, ExprErrorKind::Expected { expected: AGE_LIMIT, found: found.into() });
        }
        assert_eq!(
            error("entrance_pass_age < 99999999999999d").kind,
            ExprErrorKind::Expected { expected: AGE_LIMIT, found: "`99999999999999d`".into() }
        );
        assert_eq!(error("entrance_pass_age = 3d").kind, ExprErrorKind::UnexpectedChar('='));
        assert_eq!(error("always < 3d").kind, ExprErrorKind::TrailingInput { found: "`<`".into() });
    }
}
