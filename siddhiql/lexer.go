package siddhiql

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tokKind is the lexical class of a token. Keywords are identifiers: the parser compares
// them case-insensitively where the grammar expects one, so `from` can still be an
// attribute name where no keyword fits.
type tokKind uint8

const (
	tEOF    tokKind = iota
	tIdent          // name or keyword; quoted for `backtick` identifiers
	tString         // text holds the decoded value
	tNumber         // text holds the literal as written, suffix included
	tPunct          // operators and punctuation; text is the operator
)

type token struct {
	kind   tokKind
	text   string
	pos    Pos
	quoted bool // a `backtick` identifier: never a keyword
}

// describe names the token for error messages: 'define', '(', string "x", end of input.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of input"
	case tString:
		s := t.text
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("string %q", s)
	case tIdent:
		if t.quoted {
			return "'`" + t.text + "`'"
		}
	}
	return "'" + t.text + "'"
}

// lexer turns the app text into tokens. Columns count runes, starting at 1.
type lexer struct {
	src       string
	off       int
	line, col int
}

func (lx *lexer) pos() Pos { return Pos{Line: lx.line, Col: lx.col} }

func (lx *lexer) peekByte(k int) byte {
	if lx.off+k < len(lx.src) {
		return lx.src[lx.off+k]
	}
	return 0
}

// advance consumes one rune, keeping line and column.
func (lx *lexer) advance() {
	if lx.off >= len(lx.src) {
		return
	}
	if lx.src[lx.off] == '\n' {
		lx.off++
		lx.line++
		lx.col = 1
		return
	}
	_, size := utf8.DecodeRuneInString(lx.src[lx.off:])
	lx.off += size
	lx.col++
}

func (lx *lexer) advanceN(n int) {
	for range n {
		lx.advance()
	}
}

func errAt(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// skipSpace skips white space and comments (-- line, // line, /* block */).
func (lx *lexer) skipSpace() *Error {
	for lx.off < len(lx.src) {
		c := lx.src[lx.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			lx.advance()
		case (c == '-' && lx.peekByte(1) == '-') || (c == '/' && lx.peekByte(1) == '/'):
			for lx.off < len(lx.src) && lx.src[lx.off] != '\n' {
				lx.advance()
			}
		case c == '/' && lx.peekByte(1) == '*':
			start := lx.pos()
			lx.advanceN(2)
			for {
				if lx.off >= len(lx.src) {
					return errAt(start, "unterminated /* comment")
				}
				if lx.src[lx.off] == '*' && lx.peekByte(1) == '/' {
					lx.advanceN(2)
					break
				}
				lx.advance()
			}
		default:
			return nil
		}
	}
	return nil
}

func isLetter(c byte) bool { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isIdentByte(c byte) bool {
	return isLetter(c) || isDigit(c)
}

// punctAt returns the operator at the start of s, trying longer ones first so that "..."
// wins over ".".
func punctAt(s string) string {
	for _, p := range [...]string{"...", "==", "!=", "<=", ">=", "->", "+", "-", "*", "/", "%",
		"<", ">", "(", ")", "[", "]", ",", ";", ".", "#", "@", ":", "="} {
		if strings.HasPrefix(s, p) {
			return p
		}
	}
	return ""
}

// next returns the next token; at the end it keeps returning tEOF. Errors are *Error.
func (lx *lexer) next() (token, *Error) {
	if err := lx.skipSpace(); err != nil {
		return token{}, err
	}
	pos := lx.pos()
	if lx.off >= len(lx.src) {
		return token{kind: tEOF, pos: pos}, nil
	}
	c := lx.src[lx.off]
	switch {
	case isLetter(c):
		start := lx.off
		for lx.off < len(lx.src) && isIdentByte(lx.src[lx.off]) {
			lx.advance()
		}
		return token{kind: tIdent, text: lx.src[start:lx.off], pos: pos}, nil
	case c == '`':
		lx.advance()
		start := lx.off
		for lx.off < len(lx.src) && isIdentByte(lx.src[lx.off]) {
			lx.advance()
		}
		name := lx.src[start:lx.off]
		if lx.peekByte(0) != '`' || name == "" || isDigit(name[0]) {
			return token{}, errAt(pos, "malformed quoted identifier: expected `name` with letters, digits and '_'")
		}
		lx.advance()
		return token{kind: tIdent, text: name, pos: pos, quoted: true}, nil
	case isDigit(c):
		return lx.number(pos), nil
	case c == '\'' || c == '"':
		return lx.str(pos)
	}
	if p := punctAt(lx.src[lx.off:]); p != "" {
		lx.advanceN(len(p))
		return token{kind: tPunct, text: p, pos: pos}, nil
	}
	r, _ := utf8.DecodeRuneInString(lx.src[lx.off:])
	return token{}, errAt(pos, "unexpected character %q", r)
}

// number lexes 10, 10L, 1.5, 1.5d, 1e3, 1.5f. Its value is checked by the parser, which
// knows whether a '-' precedes it.
func (lx *lexer) number(pos Pos) token {
	start := lx.off
	digits := func() {
		for lx.off < len(lx.src) && isDigit(lx.src[lx.off]) {
			lx.advance()
		}
	}
	digits()
	if lx.peekByte(0) == '.' && isDigit(lx.peekByte(1)) {
		lx.advance()
		digits()
	}
	if e := lx.peekByte(0); e == 'e' || e == 'E' {
		k := 1
		if s := lx.peekByte(1); s == '+' || s == '-' {
			k = 2
		}
		if isDigit(lx.peekByte(k)) {
			lx.advanceN(k)
			digits()
		}
	}
	switch lx.peekByte(0) {
	case 'L', 'l', 'f', 'F', 'd', 'D':
		// 10days is 10 then days, not the double 10d then ays.
		if !isIdentByte(lx.peekByte(1)) {
			lx.advance()
		}
	}
	return token{kind: tNumber, text: lx.src[start:lx.off], pos: pos}
}

// str lexes '...', "..." (backslash escapes, single line) and """...""" (raw, any lines).
func (lx *lexer) str(pos Pos) (token, *Error) {
	if strings.HasPrefix(lx.src[lx.off:], `"""`) {
		lx.advanceN(3)
		end := strings.Index(lx.src[lx.off:], `"""`)
		if end < 0 {
			return token{}, errAt(pos, `unterminated """ string`)
		}
		text := lx.src[lx.off : lx.off+end]
		for lx.off < len(lx.src) && !strings.HasPrefix(lx.src[lx.off:], `"""`) {
			lx.advance()
		}
		lx.advanceN(3)
		return token{kind: tString, text: text, pos: pos}, nil
	}
	quote := lx.src[lx.off]
	lx.advance()
	var b strings.Builder
	for {
		if lx.off >= len(lx.src) || lx.src[lx.off] == '\n' || lx.src[lx.off] == '\r' {
			return token{}, errAt(pos, "unterminated string (strings cannot span lines; use \"\"\"...\"\"\")")
		}
		c := lx.src[lx.off]
		if c == quote {
			lx.advance()
			return token{kind: tString, text: b.String(), pos: pos}, nil
		}
		if c == '\\' && lx.off+1 < len(lx.src) {
			switch e := lx.src[lx.off+1]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '\\', '\'', '"':
				b.WriteByte(e)
			default:
				// Unknown escapes stay as written, so regular expressions such as '\d+' work.
				b.WriteByte('\\')
				lx.advance()
				continue
			}
			lx.advanceN(2)
			continue
		}
		_, size := utf8.DecodeRuneInString(lx.src[lx.off:])
		b.WriteString(lx.src[lx.off : lx.off+size])
		lx.advance()
	}
}
