//! The InfluxQL scanner, after 1.x's `influxql/scanner.go`: identifiers (bare or double
//! quoted), keywords (case-insensitive), strings, numbers, durations and operators,
//! each with the 1-based line and character where it starts, for 1.x-style error positions.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A bare word; keywords are bare words compared case-insensitively by the parser.
    Word(String),
    Str(String),
    Integer(i64),
    Number(f64),
    /// A duration literal, in nanoseconds, with its text.
    Duration(i64, String),
    /// A duration-looking literal with an unknown unit (1.x: `invalid duration`).
    BadDuration(String),
    Op(&'static str),
    /// A bound parameter `$name`.
    Param(String),
    Semicolon,
    Comma,
    Dot,
    LParen,
    RParen,
    Illegal(String),
    Eof,
}

impl fmt::Display for Tok {
    /// How 1.x names the token after `found`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) | Tok::Word(s) | Tok::Str(s) | Tok::BadDuration(s) | Tok::Illegal(s) => {
                f.write_str(s)
            }
            Tok::Integer(n) => write!(f, "{n}"),
            Tok::Number(n) => write!(f, "{n}"),
            Tok::Duration(_, s) => f.write_str(s),
            Tok::Op(o) => f.write_str(o),
            Tok::Param(p) => write!(f, "${p}"),
            Tok::Semicolon => f.write_str(";"),
            Tok::Comma => f.write_str(","),
            Tok::Dot => f.write_str("."),
            Tok::LParen => f.write_str("("),
            Tok::RParen => f.write_str(")"),
            Tok::Eof => f.write_str("EOF"),
        }
    }
}

/// A token with where it starts (1-based line and character within the line) and its
/// character offset in the source (a parser that allows a regex at `/` rescans from there).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

/// Nanoseconds per InfluxQL duration unit.
pub fn duration_unit(unit: &str) -> Option<i64> {
    Some(match unit {
        "ns" => 1,
        "u" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => return None,
    })
}

/// Parses `1h`, `90m`, `1h30m`, ...; `None` if the text is not a duration.
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = duration_unit(&rest[..unit_len])?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

pub fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    tokenize_from(&chars, 0, 1, 0)
}

/// Tokenizes `chars` from offset `i`, which is on line `line` (1-based) whose first character
/// is at offset `line_start`. The parser uses it to rescan what follows a regex literal.
pub fn tokenize_from(chars: &[char], i: usize, line: usize, line_start: usize) -> Vec<Token> {
    let mut out = Vec::new();
    let (mut i, mut line, mut line_start) = (i, line, line_start);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            line_start = i;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // Comments: `-- ...` to end of line and `/* ... */`.
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                i += 1;
            }
            i = (i + 2).min(chars.len());
            continue;
        }
        let (start_line, col) = (line, i - line_start + 1);
        let offset = i;
        let push = |out: &mut Vec<Token>, tok| {
            out.push(Token {
                tok,
                line: start_line,
                col,
                offset,
            })
        };
        if c == '$'
            && chars
                .get(i + 1)
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
        {
            let s = i + 1;
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            push(&mut out, Tok::Param(chars[s..i].iter().collect()));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let s = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            push(&mut out, Tok::Word(chars[s..i].iter().collect()));
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let s = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // A unit right after the digits makes a duration.
            if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == 'µ') {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == 'µ') {
                    i += 1;
                }
                let text: String = chars[s..i].iter().collect();
                match parse_duration(&text) {
                    Some(d) => push(&mut out, Tok::Duration(d, text)),
                    None => push(&mut out, Tok::BadDuration(text)),
                }
                continue;
            }
            let text: String = chars[s..i].iter().collect();
            if text.contains('.') {
                match text.parse::<f64>() {
                    Ok(n) => push(&mut out, Tok::Number(n)),
                    Err(_) => push(&mut out, Tok::Illegal(text)),
                }
            } else {
                match text.parse::<i64>() {
                    Ok(n) => push(&mut out, Tok::Integer(n)),
                    Err(_) => match text.parse::<f64>() {
                        Ok(n) => push(&mut out, Tok::Number(n)),
                        Err(_) => push(&mut out, Tok::Illegal(text)),
                    },
                }
            }
            continue;
        }
        if c == '"' || c == '\'' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            let mut closed = false;
            while i < chars.len() {
                let ch = chars[i];
                if ch == '\\' && i + 1 < chars.len() {
                    let next = chars[i + 1];
                    match next {
                        'n' => s.push('\n'),
                        '\\' => s.push('\\'),
                        '"' => s.push('"'),
                        '\'' => s.push('\''),
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                    i += 2;
                    continue;
                }
                if ch == quote {
                    closed = true;
                    i += 1;
                    break;
                }
                if ch == '\n' {
                    break;
                }
                s.push(ch);
                i += 1;
            }
            if !closed {
                push(&mut out, Tok::Illegal(format!("{quote}{s}")));
                continue;
            }
            if quote == '"' {
                push(&mut out, Tok::Ident(s));
            } else {
                // 1.x reports a string one character before its opening quote.
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start_line,
                    col: col.saturating_sub(1).max(1),
                    offset,
                });
            }
            continue;
        }
        i += 1;
        let two = chars.get(i).copied();
        let tok = match (c, two) {
            (';', _) => Tok::Semicolon,
            (',', _) => Tok::Comma,
            ('.', _) => Tok::Dot,
            ('(', _) => Tok::LParen,
            (')', _) => Tok::RParen,
            ('=', Some('~')) => {
                i += 1;
                Tok::Op("=~")
            }
            ('!', Some('~')) => {
                i += 1;
                Tok::Op("!~")
            }
            ('!', Some('=')) => {
                i += 1;
                Tok::Op("!=")
            }
            ('<', Some('>')) => {
                i += 1;
                Tok::Op("<>")
            }
            ('<', Some('=')) => {
                i += 1;
                Tok::Op("<=")
            }
            ('>', Some('=')) => {
                i += 1;
                Tok::Op(">=")
            }
            ('=', _) => Tok::Op("="),
            ('<', _) => Tok::Op("<"),
            ('>', _) => Tok::Op(">"),
            ('+', _) => Tok::Op("+"),
            ('-', _) => Tok::Op("-"),
            ('*', _) => Tok::Op("*"),
            ('%', _) => Tok::Op("%"),
            ('&', _) => Tok::Op("&"),
            ('|', _) => Tok::Op("|"),
            ('^', _) => Tok::Op("^"),
            (':', Some(':')) => {
                i += 1;
                Tok::Op("::")
            }
            ('/', _) => Tok::Op("/"),
            (other, _) => Tok::Illegal(other.to_string()),
        };
        push(&mut out, tok);
    }
    // Where 1.x reports EOF: one character past the end after a word (its scanner reads past
    // the end of an identifier without stepping back), just past the end otherwise.
    let after_word = matches!(
        out.last(),
        Some(Token {
            tok: Tok::Word(_),
            ..
        })
    );
    let col = chars.len() - line_start + if after_word { 2 } else { 1 };
    out.push(Token {
        tok: Tok::Eof,
        line,
        col,
        offset: chars.len(),
    });
    out
}

/// Scans a regex literal whose opening `/` is at char offset `start` of `src`. Returns the
/// pattern (with `\/` unescaped) and the char offset just past the closing `/`.
pub fn scan_regex(src: &str, start: usize) -> Option<(String, usize)> {
    let chars: Vec<char> = src.chars().collect();
    if chars.get(start) != Some(&'/') {
        return None;
    }
    let mut i = start + 1;
    let mut body = String::new();
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&'/') => {
                body.push('/');
                i += 2;
            }
            '/' => return Some((body, i + 1)),
            '\n' => return None,
            c => {
                body.push(c);
                i += 1;
            }
        }
    }
    None
}
