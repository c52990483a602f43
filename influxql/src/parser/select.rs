//! The `SELECT` statement and expressions: fields, sources, dimensions, fill, order, limits,
//! and operands with 1.x's precedence and error texts.

use super::*;

impl Parser {
    /// `[ON db] [FROM sources] [WITH KEY ...] [WHERE cond] [LIMIT n] [OFFSET n]`.
    pub(super) fn show_filter(
        &mut self,
        with_key: bool,
    ) -> Result<(ShowFilter, Option<TagKeyMatch>), ParseError> {
        let mut flt = ShowFilter {
            database: self.on_database()?,
            ..Default::default()
        };
        if self.accept("FROM") {
            loop {
                flt.sources.push(self.measurement()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.pos += 1;
            }
        }
        let mut key = None;
        if with_key {
            self.expect("WITH")?;
            self.expect("KEY")?;
            key = Some(if self.is_op("=") {
                self.pos += 1;
                TagKeyMatch::Eq(self.ident()?)
            } else if self.is_op("!=") || self.is_op("<>") {
                self.pos += 1;
                TagKeyMatch::NotEq(self.ident()?)
            } else if self.is_op("=~") || self.is_op("!~") {
                let negate = self.is_op("!~");
                self.pos += 1;
                let re = self.try_regex()?.ok_or_else(|| self.expected("regex"))?;
                if negate {
                    TagKeyMatch::NotRegex(re)
                } else {
                    TagKeyMatch::Regex(re)
                }
            } else if self.accept("IN") {
                self.expect_tok(Tok::LParen, "(")?;
                let mut keys = vec![self.ident()?];
                while self.peek().tok == Tok::Comma {
                    self.pos += 1;
                    keys.push(self.ident()?);
                }
                self.expect_tok(Tok::RParen, ")")?;
                TagKeyMatch::In(keys)
            } else {
                return Err(self.expected("=, !=, =~, !~, IN"));
            });
        }
        if self.accept("WHERE") {
            flt.condition = Some(self.expr(0)?);
        }
        if self.accept("LIMIT") {
            flt.limit = Some(self.unsigned()?);
        }
        if self.accept("OFFSET") {
            flt.offset = Some(self.unsigned()?);
        }
        Ok((flt, key))
    }

    pub(super) fn is_op(&self, op: &str) -> bool {
        matches!(&self.peek().tok, Tok::Op(o) if *o == op)
    }

    pub(super) fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    pub(super) fn expect_tok(&mut self, tok: Tok, what: &str) -> Result<(), ParseError> {
        if self.peek().tok == tok {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    /// A regex literal at the current `/` token, rescanned from the source.
    pub(super) fn try_regex(&mut self) -> Result<Option<String>, ParseError> {
        if !self.is_op("/") {
            return Ok(None);
        }
        let t = self.peek().clone();
        self.regex_at(t.offset, t.line, t.offset + 1 - t.col)
            .map(Some)
    }

    /// A regex literal right after the operator token `op` (`=~`), when the tokens read ahead
    /// took its `/*` for the start of a comment (1.x's scanner reads a regex there).
    pub(super) fn regex_after(&mut self, op: &Token) -> Result<Option<String>, ParseError> {
        let chars: Vec<char> = self.src.chars().collect();
        let mut i = op.offset + 2;
        let (mut line, mut line_start) = (op.line, op.offset + 1 - op.col);
        while i < chars.len() && chars[i].is_whitespace() {
            if chars[i] == '\n' {
                line += 1;
                line_start = i + 1;
            }
            i += 1;
        }
        if chars.get(i) != Some(&'/') {
            return Ok(None);
        }
        self.regex_at(i, line, line_start).map(Some)
    }

    /// The regex literal whose `/` is at char `offset` (on `line`, which starts at char
    /// `line_start`); the tokens after it are scanned again from its end.
    fn regex_at(
        &mut self,
        offset: usize,
        line: usize,
        line_start: usize,
    ) -> Result<String, ParseError> {
        let col = offset - line_start + 1;
        let Some((re, end)) = scan_regex(&self.src, offset) else {
            return Err(ParseError {
                message: "unterminated regex".into(),
                line,
                col,
            });
        };
        if let Err(why) = check_regex(&re) {
            // 1.x places it one column before the `/`.
            return Err(ParseError {
                message: format!("error parsing regexp: {why}"),
                line,
                col: col.saturating_sub(1).max(1),
            });
        }
        // The tokens read ahead ignored the regex (a quote inside it may have opened a string):
        // scan again from its end.
        let chars: Vec<char> = self.src.chars().collect();
        self.toks.truncate(self.pos);
        self.toks
            .extend(tokenize_from(&chars, end, line, line_start));
        Ok(re)
    }

    pub(super) fn select(&mut self) -> Result<SelectStatement, ParseError> {
        let mut s = SelectStatement {
            fields: self.fields()?,
            ..Default::default()
        };
        if self.accept("INTO") {
            s.into = Some(self.target_measurement()?);
        }
        self.expect("FROM")?;
        s.sources = self.sources()?;
        if self.accept("WHERE") {
            s.condition = Some(self.expr(0)?);
        }
        if self.accept("GROUP") {
            self.expect("BY")?;
            s.dimensions = self.dimensions()?;
        }
        if self.is_word("fill") {
            self.pos += 1;
            s.fill = Some(self.fill()?);
        }
        if self.accept("ORDER") {
            self.expect("BY")?;
            s.order_desc = self.order_by()?;
        }
        if self.accept("LIMIT") {
            s.limit = Some(self.unsigned()?);
        }
        if self.accept("OFFSET") {
            s.offset = Some(self.unsigned()?);
        }
        if self.accept("SLIMIT") {
            s.slimit = Some(self.unsigned()?);
        }
        if self.accept("SOFFSET") {
            s.soffset = Some(self.unsigned()?);
        }
        if self.is_word("tz") {
            self.pos += 1;
            self.expect_tok(Tok::LParen, "(")?;
            match self.peek().tok.clone() {
                Tok::Str(tz) => {
                    if tz.parse::<chrono_tz::Tz>().is_err() {
                        return Err(ParseError {
                            message: format!("unable to find time zone {tz}"),
                            line: 0,
                            col: 0,
                        });
                    }
                    self.pos += 1;
                    s.timezone = Some(tz);
                }
                _ => return Err(self.expected("string")),
            }
            self.expect_tok(Tok::RParen, ")")?;
        }
        Ok(s)
    }

    pub(super) fn fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut out = Vec::new();
        loop {
            let expr = self.expr(0)?;
            let alias = if self.accept("AS") {
                Some(self.ident()?)
            } else {
                None
            };
            out.push(Field { expr, alias });
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    /// `[db.][rp.]name`, `db..name`, any of them ending in a regex instead of a name.
    /// An `INTO` target: a measurement, or `db.rp.:MEASUREMENT` (`rp.:MEASUREMENT`,
    /// `db..:MEASUREMENT`) naming each source measurement.
    pub(super) fn target_measurement(&mut self) -> Result<Measurement, ParseError> {
        self.measurement_or_back_reference(true)
    }

    pub(super) fn measurement(&mut self) -> Result<Measurement, ParseError> {
        self.measurement_or_back_reference(false)
    }

    pub(super) fn measurement_or_back_reference(
        &mut self,
        target: bool,
    ) -> Result<Measurement, ParseError> {
        let mut parts: Vec<Option<String>> = Vec::new();
        loop {
            if target
                && !parts.is_empty()
                && matches!(&self.peek().tok, Tok::Illegal(c) if c == ":")
                && matches!(
                    self.toks.get(self.pos + 1).map(|t| &t.tok),
                    Some(Tok::Word(w)) if w.eq_ignore_ascii_case("MEASUREMENT")
                )
            {
                self.pos += 2;
                // The part before the dot that led here is the rp (or db..).
                let mut m = Measurement {
                    back_reference: true,
                    ..Default::default()
                };
                assign_prefix(&mut m, parts);
                return Ok(m);
            }
            if let Some(re) = self.try_regex()? {
                let mut m = Measurement {
                    regex: Some(re),
                    ..Default::default()
                };
                assign_prefix(&mut m, parts);
                return Ok(m);
            }
            if self.peek().tok == Tok::Dot {
                // an empty part: `db..m`
                parts.push(None);
                self.pos += 1;
                continue;
            }
            let name = self.ident()?;
            parts.push(Some(name));
            if self.peek().tok == Tok::Dot && parts.len() < 3 {
                self.pos += 1;
                if self.peek().tok == Tok::Dot {
                    parts.push(None);
                    self.pos += 1;
                }
                continue;
            }
            break;
        }
        let name = parts.pop().flatten();
        let mut m = Measurement {
            name,
            ..Default::default()
        };
        assign_prefix(&mut m, parts);
        Ok(m)
    }

    pub(super) fn sources(&mut self) -> Result<Vec<Source>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.peek().tok == Tok::LParen {
                self.pos += 1;
                self.expect("SELECT")?;
                let q = self.select()?;
                self.expect_tok(Tok::RParen, ")")?;
                out.push(Source::Subquery(Box::new(q)));
            } else {
                out.push(Source::Measurement(self.measurement()?));
            }
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    pub(super) fn dimensions(&mut self) -> Result<Vec<Dimension>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.is_op("*") {
                self.pos += 1;
                out.push(Dimension::Wildcard);
            } else if let Some(re) = self.try_regex()? {
                out.push(Dimension::Regex(re));
            } else if self.is_word("time")
                && self
                    .toks
                    .get(self.pos + 1)
                    .is_some_and(|t| t.tok == Tok::LParen)
            {
                self.pos += 2;
                // 1.x gives no position for a bad duration in `time(...)`.
                let unplaced = |e: ParseError| match e.message.as_str() {
                    "invalid duration" => ParseError {
                        line: 0,
                        col: 0,
                        ..e
                    },
                    _ => e,
                };
                // 1.x parses `time(...)` as a call: the end of the statement in it reads as in
                // a call's arguments.
                if let Some(e) = self.eof_in_call() {
                    return Err(e);
                }
                let interval = self.duration().map_err(unplaced)?;
                let offset = if self.peek().tok == Tok::Comma {
                    self.pos += 1;
                    if let Some(e) = self.eof_in_call() {
                        return Err(e);
                    }
                    Some(self.signed_duration().map_err(unplaced)?)
                } else {
                    None
                };
                self.expect_tok(Tok::RParen, ")")?;
                out.push(Dimension::Time { interval, offset });
            } else {
                match &self.peek().tok {
                    Tok::Ident(s) => {
                        out.push(Dimension::Tag(s.clone()));
                        self.pos += 1;
                    }
                    Tok::Word(w) if !is_keyword(w) => {
                        out.push(Dimension::Tag(w.clone()));
                        self.pos += 1;
                    }
                    _ => return Err(self.expected(OPERAND)),
                }
            }
            if self.peek().tok != Tok::Comma {
                return Ok(out);
            }
            self.pos += 1;
        }
    }

    pub(super) fn signed_duration(&mut self) -> Result<i64, ParseError> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(-self.duration()?);
        }
        if matches!(self.peek().tok, Tok::Word(ref w) if w.eq_ignore_ascii_case("now")) {
            // `time(1h, now())`: 1.x computes the offset from the current time.
            self.pos += 1;
            self.expect_tok(Tok::LParen, "(")?;
            self.expect_tok(Tok::RParen, ")")?;
            return Ok(i64::MIN);
        }
        self.duration()
    }

    pub(super) fn fill(&mut self) -> Result<Fill, ParseError> {
        let unplaced = |message: &str| ParseError {
            message: message.into(),
            line: 0,
            col: 0,
        };
        if self.peek().tok != Tok::LParen {
            return Err(unplaced("fill must be a function call"));
        }
        self.pos += 1;
        // 1.x parses the arguments as expressions, then checks them (the names in lower case).
        let mut args = Vec::new();
        while self.peek().tok != Tok::RParen {
            if let Some(e) = self.eof_in_call() {
                return Err(e);
            }
            args.push(self.expr(0)?);
            if self.peek().tok != Tok::Comma {
                break;
            }
            self.pos += 1;
        }
        self.expect_tok(Tok::RParen, ")")?;
        let [arg] = args.as_slice() else {
            return Err(unplaced(
                "fill requires an argument, e.g.: 0, null, none, previous, linear",
            ));
        };
        Ok(match arg {
            Expr::VarRef { name, typ: None } if name == "null" => Fill::Null,
            Expr::VarRef { name, typ: None } if name == "none" => Fill::None,
            Expr::VarRef { name, typ: None } if name == "previous" => Fill::Previous,
            Expr::VarRef { name, typ: None } if name == "linear" => Fill::Linear,
            Expr::Integer(n) => Fill::Integer(*n),
            Expr::Number(n) => Fill::Number(*n),
            // `-n` parses as `-1 * n`.
            Expr::Binary {
                op: BinaryOp::Mul,
                lhs,
                rhs,
            } if **lhs == Expr::Integer(-1) => match rhs.as_ref() {
                Expr::Integer(n) => Fill::Integer(-n),
                Expr::Number(n) => Fill::Number(-n),
                _ => return Err(unplaced("expected number argument in fill()")),
            },
            _ => return Err(unplaced("expected number argument in fill()")),
        })
    }

    /// `ORDER BY time [ASC|DESC]`; returns whether it is descending.
    pub(super) fn order_by(&mut self) -> Result<bool, ParseError> {
        let unsupported = || ParseError {
            message: "only ORDER BY time supported at this time".into(),
            line: 0,
            col: 0,
        };
        if !self.is_word("time") {
            return Err(unsupported());
        }
        self.pos += 1;
        let desc = if self.accept("DESC") {
            true
        } else {
            self.accept("ASC");
            false
        };
        if self.peek().tok == Tok::Comma {
            return Err(unsupported());
        }
        Ok(desc)
    }

    /// Precedence climbing over 1.x's binary operators.
    pub(super) fn expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let op = match &self.peek().tok {
                Tok::Op(o) => BinaryOp::from_token(o),
                Tok::Word(w) if w.eq_ignore_ascii_case("AND") => Some(BinaryOp::And),
                Tok::Word(w) if w.eq_ignore_ascii_case("OR") => Some(BinaryOp::Or),
                _ => None,
            };
            let Some(op) = op else { return Ok(lhs) };
            let prec = op.precedence();
            if prec <= min_prec {
                return Ok(lhs);
            }
            let op_tok = self.peek().clone();
            self.pos += 1;
            let rhs = if matches!(op, BinaryOp::EqRegex | BinaryOp::NotEqRegex) {
                let re = match self.try_regex()? {
                    Some(re) => Some(re),
                    None => self.regex_after(&op_tok)?,
                };
                match re {
                    Some(re) => Expr::Regex(re),
                    None => match &self.peek().tok {
                        Tok::Param(_) => self.unary()?,
                        _ => return Err(self.expected("regex")),
                    },
                }
            } else {
                self.expr(prec)?
            };
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    pub(super) fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.is_op("-") || self.is_op("+") {
            let neg = self.is_op("-");
            self.pos += 1;
            let e = self.unary()?;
            if !neg {
                return Ok(e);
            }
            return Ok(match e {
                Expr::Integer(n) => Expr::Integer(-n),
                Expr::Number(n) => Expr::Number(-n),
                Expr::Duration(d) => Expr::Duration(-d),
                other => Expr::Binary {
                    op: BinaryOp::Mul,
                    lhs: Box::new(Expr::Integer(-1)),
                    rhs: Box::new(other),
                },
            });
        }
        self.operand()
    }

    pub(super) fn var_type(&mut self) -> Result<Option<VarType>, ParseError> {
        if !self.is_op("::") {
            return Ok(None);
        }
        self.pos += 1;
        let t = self.peek().clone();
        match &t.tok {
            Tok::Word(w) => match VarType::parse(w) {
                Some(v) => {
                    self.pos += 1;
                    Ok(Some(v))
                }
                None => Err(Self::error_at(
                    &t,
                    format!(
                        "found {w}, expected float, integer, unsigned, string, boolean, field, tag"
                    ),
                )),
            },
            _ => Err(self.expected("float, integer, unsigned, string, boolean, field, tag")),
        }
    }

    pub(super) fn operand(&mut self) -> Result<Expr, ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Op("*") => {
                self.pos += 1;
                Ok(Expr::Wildcard(self.var_type()?))
            }
            Tok::Op("/") => match self.try_regex()? {
                Some(re) => Ok(Expr::Regex(re)),
                None => Err(self.expected(OPERAND)),
            },
            Tok::LParen => {
                self.pos += 1;
                let e = self.expr(0)?;
                self.expect_tok(Tok::RParen, ")")?;
                Ok(Expr::Paren(Box::new(e)))
            }
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Expr::String(s))
            }
            Tok::Integer(n) => {
                self.pos += 1;
                Ok(Expr::Integer(n))
            }
            Tok::Number(n) => {
                self.pos += 1;
                Ok(Expr::Number(n))
            }
            Tok::Duration(d, _) => {
                self.pos += 1;
                Ok(Expr::Duration(d))
            }
            // 1.x gives no position for a bad duration inside an expression.
            Tok::BadDuration(_) => Err(ParseError {
                message: "invalid duration".into(),
                line: 0,
                col: 0,
            }),
            Tok::Param(p) => {
                self.pos += 1;
                Ok(Expr::BoundParam(p))
            }
            // `distinct` is a keyword and a function: `distinct(x)`, `count(distinct(x))` and
            // the shorthand `DISTINCT x`.
            Tok::Word(ref w) if w.eq_ignore_ascii_case("distinct") => {
                self.pos += 1;
                let arg = if self.peek().tok == Tok::LParen {
                    self.pos += 1;
                    let e = self.expr(0)?;
                    self.expect_tok(Tok::RParen, ")")?;
                    e
                } else {
                    let name = self.ident()?;
                    Expr::VarRef { name, typ: None }
                };
                Ok(Expr::Call {
                    name: "distinct".into(),
                    args: vec![arg],
                })
            }
            Tok::Word(ref w) if w.eq_ignore_ascii_case("true") => {
                self.pos += 1;
                Ok(Expr::Boolean(true))
            }
            Tok::Word(ref w) if w.eq_ignore_ascii_case("false") => {
                self.pos += 1;
                Ok(Expr::Boolean(false))
            }
            Tok::Ident(name) => {
                self.pos += 1;
                Ok(Expr::VarRef {
                    name,
                    typ: self.var_type()?,
                })
            }
            Tok::Word(ref w) if !is_keyword(w) => {
                let name = w.clone();
                self.pos += 1;
                if self.peek().tok == Tok::LParen {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek().tok != Tok::RParen {
                        loop {
                            if let Some(e) = self.eof_in_call() {
                                return Err(e);
                            }
                            args.push(self.expr(0)?);
                            if self.peek().tok != Tok::Comma {
                                break;
                            }
                            self.pos += 1;
                        }
                    }
                    self.expect_tok(Tok::RParen, ")")?;
                    return Ok(Expr::Call {
                        name: name.to_ascii_lowercase(),
                        args,
                    });
                }
                Ok(Expr::VarRef {
                    name,
                    typ: self.var_type()?,
                })
            }
            _ => Err(self.expected(OPERAND)),
        }
    }
}

/// `a.b.m` → db a, rp b; `a.m` → rp a; `a..m` → db a.
pub(super) fn assign_prefix(m: &mut Measurement, parts: Vec<Option<String>>) {
    match parts.len() {
        0 => {}
        1 => m.retention_policy = parts.into_iter().next().flatten(),
        _ => {
            let mut it = parts.into_iter();
            m.database = it.next().flatten();
            m.retention_policy = it.next().flatten();
        }
    }
}

/// Whether `re` is a regular expression 1.x (Go's `regexp`) would compile; if not, Go's text
/// for the common mistakes, else the parser's own.
fn check_regex(re: &str) -> Result<(), String> {
    use regex_syntax::ast::{Ast, ErrorKind, Visitor, parse::Parser, visit};
    let at =
        |span: &regex_syntax::ast::Span| re.get(span.start.offset..span.end.offset).unwrap_or(re);
    let ast = Parser::new().parse(re).map_err(|e| {
        let span = e.span();
        match e.kind() {
            ErrorKind::ClassUnclosed => format!(
                "missing closing ]: `{}`",
                re.get(span.start.offset..).unwrap_or(re)
            ),
            ErrorKind::GroupUnclosed => format!("missing closing ): `{re}`"),
            ErrorKind::GroupUnopened => format!("unexpected ): `{re}`"),
            ErrorKind::RepetitionMissing => {
                // A leading operator gets an empty span; Go names the operator.
                let op = match at(span) {
                    "" => re
                        .get(span.start.offset..)
                        .and_then(|r| r.chars().next())
                        .map(String::from)
                        .unwrap_or_default(),
                    text => text.to_string(),
                };
                format!("missing argument to repetition operator: `{op}`")
            }
            ErrorKind::EscapeUnrecognized => format!("invalid escape sequence: `{}`", at(span)),
            ErrorKind::ClassRangeInvalid => {
                format!("invalid character class range: `{}`", at(span))
            }
            ErrorKind::RepetitionCountInvalid | ErrorKind::RepetitionCountUnclosed => {
                format!("invalid repeat count: `{}`", at(span))
            }
            other => other.to_string(),
        }
    })?;
    // Go refuses a repetition of a repetition (`a**`), which this parser accepts.
    struct Nested<'a>(&'a str, Option<String>);
    impl Visitor for Nested<'_> {
        type Output = Option<String>;
        type Err = ();
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            if let (Ast::Repetition(outer), None) = (ast, &self.1) {
                if let Ast::Repetition(inner) = outer.ast.as_ref() {
                    let (from, to) = (inner.op.span.start.offset, outer.op.span.end.offset);
                    if let Some(ops) = self.0.get(from..to) {
                        self.1 = Some(format!("invalid nested repetition operator: `{ops}`"));
                    }
                }
            }
            Ok(())
        }
        fn finish(self) -> Result<Option<String>, ()> {
            Ok(self.1)
        }
    }
    match visit(&ast, Nested(re, None)) {
        Ok(Some(why)) => Err(why),
        _ => Ok(()),
    }
}
